//! Settings files: `tessera coordinator --config FILE` and `tessera node --config FILE` read a
//! TOML file whose keys are the command's long flags (`data-dir = "/var/lib/tessera"`,
//! `ec = "4+2"`, `anonymous = false`), plus the global ones (`coordinator`, `ca-cert`,
//! `admin-token-file`).
//!
//! One source of truth: the keys, their help and their defaults are clap's definitions of
//! the flags, so `tessera config coordinator` (the reference file, [`reference`]) and
//! `--help` cannot drift apart. The file is merged into the command line before clap parses
//! it ([`merge`]): a flag on the command line wins, then the setting's environment variable
//! (its declared one, else `TESSERA_{KEY}` for the coordinator and the global flags and
//! `TESSERA_NODE_{KEY}` for a node: see [`env_name`]), then the file, then the default. A key
//! that is not a setting of the command is an error naming it. `--check-config` prints the
//! settings the command would run with and where each came from, and exits.

use anyhow::{bail, Context};
use clap::{Arg, ArgAction, Command};
use std::ffi::OsString;

/// The commands a settings file configures.
const CONFIGURED: &[&str] = &["coordinator", "node"];

/// Flags that are not settings (and so never in a file).
const NOT_SETTINGS: &[&str] = &["help", "version", "config", "check-config", "json"];

/// The settings of subcommand `sub` of `root`: its flags and the global ones, without hidden
/// (test-only) flags and those in [`NOT_SETTINGS`].
pub fn settings(root: &Command, sub: &str) -> Vec<Arg> {
    let Some(c) = root.find_subcommand(sub) else {
        return Vec::new();
    };
    root.get_arguments()
        .filter(|a| a.is_global_set())
        .chain(c.get_arguments())
        .filter(|a| a.get_long().is_some_and(|l| !NOT_SETTINGS.contains(&l)) && !a.is_hide_set())
        .cloned()
        .collect()
}

/// The environment variable that sets `a` for subcommand `sub`: the flag's declared one, else
/// `TESSERA_NODE_{KEY}` for a node's own flags and `TESSERA_{KEY}` otherwise (KEY: the flag
/// in upper case, `-` as `_`).
pub fn env_name(sub: &str, a: &Arg) -> String {
    if let Some(e) = a.get_env() {
        return e.to_string_lossy().into_owned();
    }
    let key = a
        .get_long()
        .unwrap_or_default()
        .to_uppercase()
        .replace('-', "_");
    if sub == "node" && !a.is_global_set() {
        format!("TESSERA_NODE_{key}")
    } else {
        format!("TESSERA_{key}")
    }
}

/// Whether `a` takes no value (an on/off flag).
fn is_switch(a: &Arg) -> bool {
    matches!(a.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
}

/// Whether the command line `args` (after the subcommand) names `a`.
fn named(args: &[OsString], a: &Arg) -> bool {
    let mut longs: Vec<String> = a.get_long().into_iter().map(String::from).collect();
    longs.extend(
        a.get_all_aliases()
            .unwrap_or_default()
            .into_iter()
            .map(String::from),
    );
    args.iter().filter_map(|t| t.to_str()).any(|t| {
        longs.iter().any(|l| {
            t.strip_prefix("--")
                .is_some_and(|r| r == l || r.starts_with(&format!("{l}=")))
        })
    })
}

/// Where a command line's subcommand starts: its index in `argv`, skipping the global flags
/// (and their values) before it.
fn subcommand_at(root: &Command, argv: &[OsString]) -> Option<usize> {
    let mut i = 1;
    while i < argv.len() {
        let t = argv[i].to_str()?;
        match t.strip_prefix("--") {
            Some(flag) if !flag.contains('=') => {
                let takes_value = root
                    .get_arguments()
                    .find(|a| a.get_long() == Some(flag))
                    .is_some_and(|a| !is_switch(a));
                i += if takes_value { 2 } else { 1 };
            }
            Some(_) => i += 1,
            None => return Some(i),
        }
    }
    None
}

/// The value of `--NAME V` or `--NAME=V` in `args`, if given.
fn flag_value(args: &[OsString], name: &str) -> Option<OsString> {
    let long = format!("--{name}");
    let with = format!("--{name}=");
    let mut it = args.iter();
    while let Some(t) = it.next() {
        let s = t.to_string_lossy();
        if s == long {
            return it.next().cloned();
        }
        if let Some(v) = s.strip_prefix(&with) {
            return Some(v.into());
        }
    }
    None
}

/// A TOML value as the flag's command-line words (`--key=value`, repeated for a list).
fn words(a: &Arg, key: &str, v: &toml::Value, file: &str) -> anyhow::Result<Vec<OsString>> {
    let long = a.get_long().unwrap_or(key);
    let one = |v: &toml::Value| -> anyhow::Result<String> {
        Ok(match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => bail!(
                "{file}: `{key}` takes a string, number or true/false, not {}",
                other.type_str()
            ),
        })
    };
    if is_switch(a) {
        return match v {
            toml::Value::Boolean(true) => Ok(vec![format!("--{long}").into()]),
            toml::Value::Boolean(false) => Ok(Vec::new()),
            _ => bail!("{file}: `{key}` is on or off: true or false"),
        };
    }
    let values = match v {
        toml::Value::Array(items) => {
            let many = a.get_num_args().is_some_and(|n| n.max_values() > 1)
                || matches!(a.get_action(), ArgAction::Append);
            if !many {
                bail!("{file}: `{key}` takes one value, not a list");
            }
            items.iter().map(one).collect::<anyhow::Result<Vec<_>>>()?
        }
        v => vec![one(v)?],
    };
    Ok(values
        .into_iter()
        .map(|v| format!("--{long}={v}").into())
        .collect())
}

/// What a command line becomes once its settings file is merged in.
pub enum Merged {
    /// Run with these arguments.
    Run(Vec<OsString>),
    /// `--check-config` was given: print this and exit 0.
    Print(String),
}

/// Merges the settings file of `argv`'s command (`--config FILE`, or env `TESSERA_CONFIG`)
/// into `argv`, with the precedence of the module docs. Commands without settings files, and
/// command lines without a file, come back unchanged (unless `--check-config`).
pub fn merge(root: &Command, argv: Vec<OsString>) -> anyhow::Result<Merged> {
    let Some(at) = subcommand_at(root, &argv) else {
        return Ok(Merged::Run(argv));
    };
    let sub = argv[at].to_string_lossy().into_owned();
    if !CONFIGURED.contains(&sub.as_str()) {
        return Ok(Merged::Run(argv));
    }
    let rest = &argv[at + 1..];
    // `tessera node drain ID` and the like act on a node; they take no settings file.
    if sub == "node"
        && rest
            .first()
            .and_then(|t| t.to_str())
            .is_some_and(|t| !t.starts_with('-'))
    {
        return Ok(Merged::Run(argv));
    }
    let check = rest.iter().any(|t| t == "--check-config");
    let file = flag_value(rest, "config")
        .or_else(|| std::env::var_os("TESSERA_CONFIG").filter(|v| !v.is_empty()));
    let settings = settings(root, &sub);
    let mut out = argv.clone();
    // Settings this merge added, and where from (for `--check-config`).
    let mut injected: Vec<(String, String)> = Vec::new();
    // Environment variables clap does not read itself (settings without a declared one).
    for a in settings.iter().filter(|a| a.get_env().is_none()) {
        if named(&argv[1..], a) {
            continue;
        }
        if let Some(v) = std::env::var_os(env_name(&sub, a)).filter(|v| !v.is_empty()) {
            let long = a.get_long().unwrap_or_default();
            injected.push((long.to_string(), format!("env {}", env_name(&sub, a))));
            if is_switch(a) {
                match v.to_str() {
                    Some("true" | "1") => out.push(format!("--{long}").into()),
                    Some("false" | "0") => {}
                    _ => bail!("{}: on or off: true or false", env_name(&sub, a)),
                }
            } else {
                let mut w = OsString::from(format!("--{long}="));
                w.push(&v);
                out.push(w);
            }
        }
    }
    if let Some(file) = &file {
        let name = file.to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {name}"))?;
        let table: toml::Table = text
            .parse()
            .with_context(|| format!("{name} is not a valid TOML file"))?;
        for (key, v) in &table {
            let Some(a) = settings.iter().find(|a| a.get_long() == Some(key.as_str())) else {
                let hint = settings
                    .iter()
                    .filter_map(|a| a.get_long())
                    .find(|l| l.replace('-', "_") == *key)
                    .map(|l| format!(" (did you mean `{l}`?)"))
                    .unwrap_or_default();
                bail!(
                    "{name}: unknown key `{key}`: not a setting of `tessera {sub}`{hint}; `tessera config {sub}` lists them all"
                );
            };
            let env_set = std::env::var_os(env_name(&sub, a)).is_some_and(|v| !v.is_empty());
            if named(&argv[1..], a) || env_set {
                continue;
            }
            out.extend(words(a, key, v, &name)?);
            injected.push((key.clone(), format!("--config {name}")));
        }
    }
    if check {
        return Ok(Merged::Print(effective(
            root, &sub, &settings, &out, &injected,
        )?));
    }
    Ok(Merged::Run(out))
}

/// The settings `argv` runs `sub` with, as TOML, each with where it came from (`injected`:
/// the settings [`merge`] added and their sources).
fn effective(
    root: &Command,
    sub: &str,
    settings: &[Arg],
    argv: &[OsString],
    injected: &[(String, String)],
) -> anyhow::Result<String> {
    use clap::parser::ValueSource;
    let m = root.clone().try_get_matches_from(argv)?;
    let sm = m.subcommand_matches(sub).context("no subcommand")?;
    let mut text = format!("# the settings `tessera {sub}` would run with\n");
    for a in settings {
        let (key, id) = (a.get_long().unwrap_or_default(), a.get_id().as_str());
        // Global flags are in the subcommand's matches too (clap propagates them).
        let given = sm.value_source(id);
        let source = match injected.iter().find(|(k, _)| k == key) {
            Some((_, from)) => from.clone(),
            None => match given {
                Some(ValueSource::CommandLine) => "command line".to_string(),
                Some(ValueSource::EnvVariable) => format!("env {}", env_name(sub, a)),
                Some(ValueSource::DefaultValue) => "default".to_string(),
                _ => "unset".to_string(),
            },
        };
        let raw: Vec<String> = sm
            .try_get_raw(id)
            .ok()
            .flatten()
            .map(|vs| vs.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let value = if is_switch(a) {
            let on = matches!(
                given,
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            );
            on.to_string()
        } else {
            match raw.as_slice() {
                [] => {
                    text.push_str(&format!("# {key} is not set\n"));
                    continue;
                }
                values => toml_values(values),
            }
        };
        text.push_str(&format!("{key} = {value}  # {source}\n"));
    }
    Ok(text)
}

/// `v` as a TOML value: a number stays a number, anything else is a string.
fn toml_value(v: &str) -> String {
    if v.parse::<i64>().is_ok() || (v.parse::<f64>().is_ok() && v.contains('.')) {
        v.to_string()
    } else {
        toml::Value::String(v.to_string()).to_string()
    }
}

/// A flag's values as TOML: one value as itself, several as a list.
fn toml_values(values: &[String]) -> String {
    match values {
        [one] => toml_value(one),
        many => format!(
            "[{}]",
            many.iter()
                .map(|v| toml_value(v))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The reference settings file of `sub`: every setting with its help, environment variable
/// and default, commented out (what `tessera config coordinator|node` prints).
pub fn reference(root: &Command, sub: &str) -> String {
    let mut text = format!(
        "# Settings of `tessera {sub}` (`tessera {sub} --config FILE`), generated from the\n\
         # flags' definitions by `tessera config {sub}`: every key is a flag of `tessera {sub}\n\
         # --help` (or a global one) and takes its value as TOML (strings, numbers, true/false,\n\
         # lists for flags that repeat). A flag on the command line wins over the setting's\n\
         # environment variable, which wins over this file, which wins over the default.\n"
    );
    for a in settings(root, sub) {
        let key = a.get_long().unwrap_or_default();
        text.push('\n');
        let help = a
            .get_long_help()
            .or(a.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        for line in textwrap(&help, 88) {
            text.push_str(&format!("# {line}\n"));
        }
        text.push_str(&format!("# env: {}\n", env_name(sub, &a)));
        let defaults: Vec<String> = a
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let line = if is_switch(&a) {
            format!("{key} = false")
        } else {
            match defaults.as_slice() {
                [] if a.is_required_set() => format!("{key} = ...  (required)"),
                [] => format!("{key} = ...  (no default: unset)"),
                values => format!("{key} = {}", toml_values(values)),
            }
        };
        text.push_str(&format!("#{line}\n"));
    }
    text
}

/// `text` in lines of at most `width` characters (words kept whole).
fn textwrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.lines() {
        let mut line = String::new();
        for w in para.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + w.len() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(w);
        }
        lines.push(line);
    }
    lines
}
