//! The `tessera` binary: see [`cli`] for its commands.

mod cli;

use clap::{CommandFactory, Parser};

/// glibc's malloc trims the heap whenever a little more than the largest recently freed
/// block sits free at its top; stripes allocate and free a few hundred KiB of parity each,
/// so every stripe page-faulted fresh memory (parity 10x slower for 4+2; BENCHMARKS.md,
/// "Allocator"). Fixed thresholds keep up to 64 MiB of freed memory for reuse. That much is
/// kept per arena, and glibc gives a process up to 8 arenas per core; two arenas hold the
/// coordinator's memory at a few million objects to a third less at the same rates
/// (BENCHMARKS.md, "Allocator arenas"). `MALLOC_ARENA_MAX` in the environment still wins.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any other thread
    // allocates.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}

/// glibc malloc arenas at most (see [`tune_allocator`]).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

fn main() -> anyhow::Result<()> {
    tune_allocator();
    // A settings file (`--config`) joins the command line before clap reads it.
    let args = match cli::config::merge(&cli::Cli::command(), std::env::args_os().collect()) {
        Ok(cli::config::Merged::Run(args)) => args,
        Ok(cli::config::Merged::Print(text)) => {
            print!("{text}");
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2)
        }
    };
    let cli = cli::Cli::parse_from(args);
    let code = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info,hyper=warn,reqwest=warn".into()),
                )
                .with_writer(std::io::stderr)
                .init();
            cli::run(cli).await
        })?;
    std::process::exit(code)
}
