//! README's "Deploying on several machines" as steps a test can run: the `run`, `serve`
//! and `copy` markers before its code blocks, with the example addresses (`10.0.Z.H`) mapped
//! into a test subnet.

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The test address of an example address `10.0.Z.H`: `SUBNET.(20 Z + H)`.
pub fn mapped(subnet: &str, example: &str) -> String {
    let p: Vec<u32> = example.split('.').map(|x| x.parse().unwrap()).collect();
    format!("{subnet}.{}", 20 * p[2] + p[3])
}

/// `text` with every example address `10.0.Z.H` replaced by its test address.
pub fn remap(subnet: &str, text: &str) -> String {
    let mut out = text.to_string();
    for z in 1..=3 {
        for h in (10..=13).rev() {
            let ex = format!("10.0.{z}.{h}");
            out = out.replace(&ex, &mapped(subnet, &ex));
        }
    }
    out
}

/// One step of the guide.
pub enum Step {
    /// A script run on hosts (`serve`: a server left running).
    Run {
        hosts: Vec<String>,
        serve: bool,
        script: String,
    },
    /// Files copied from one host's directory to other hosts' directory.
    Copy {
        from: String,
        dir: String,
        files: Vec<String>,
        to: Vec<String>,
        to_dir: String,
    },
}

/// The steps of README's "Deploying on several machines", in order.
pub fn guide(subnet: &str) -> Vec<Step> {
    let readme = std::fs::read_to_string(format!("{REPO}/README.md")).unwrap();
    let start = readme
        .find("### Deploying on several machines")
        .expect("README has the deployment section");
    let end = start + readme[start..].find("\n## ").unwrap();
    let section = remap(subnet, &readme[start..end]);
    let mut steps = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        let Some(marker) = line
            .trim()
            .strip_prefix("<!-- ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        let (kind, rest) = marker.split_once(": ").unwrap();
        let words: Vec<String> = rest.split_whitespace().map(str::to_string).collect();
        match kind {
            "run" | "serve" => {
                assert_eq!(lines.next().map(str::trim), Some("```sh"), "{line}");
                let script: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
                steps.push(Step::Run {
                    hosts: words,
                    serve: kind == "serve",
                    script: script.join("\n"),
                });
            }
            "copy" => {
                let arrow = words.iter().position(|w| w == "=>").unwrap();
                let (src, dst) = (&words[..arrow], &words[arrow + 1..]);
                steps.push(Step::Copy {
                    from: src[0].clone(),
                    dir: src[1].clone(),
                    files: src[2..].to_vec(),
                    to: dst[..dst.len() - 1].to_vec(),
                    to_dir: dst[dst.len() - 1].clone(),
                });
            }
            other => panic!("unknown marker {other:?} in the deployment section"),
        }
    }
    assert!(steps.len() >= 8, "the deployment section lost its steps");
    steps
}
