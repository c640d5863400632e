use clap::Parser;

/// glibc gives every thread that contends for the allocator an arena of its own and keeps freed
/// memory in them: with the blocking pool's file I/O threads that held ~60 MiB after 8 parallel
/// pulls (docs/benchmarks.md). Two arenas keep RSS bounded at no measurable speed cost. glibc
/// reads the setting only at process start, so the binary re-executes itself once with it
/// (same pid, same arguments); an explicit `MALLOC_ARENA_MAX` from the environment wins.
fn bound_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        use std::os::unix::process::CommandExt;
        if let Ok(exe) = std::env::current_exe() {
            let err = std::process::Command::new(exe)
                .args(std::env::args_os().skip(1))
                .env("MALLOC_ARENA_MAX", "2")
                .exec();
            // `exec` returns only if it failed: run on with glibc's defaults.
            eprintln!("warning: cannot re-execute with MALLOC_ARENA_MAX=2 ({err}); continuing");
        }
    }
}

fn main() -> std::process::ExitCode {
    bound_malloc_arenas();
    let cli = quayside::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        // File I/O runs on the blocking pool; bounding it bounds threads (and malloc arenas).
        .max_blocking_threads(16)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(quayside::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // `downcast_ref` sees through the context layers callers added.
            match e.downcast_ref::<quayside::server::Unavailable>() {
                Some(u) => std::process::ExitCode::from(u.exit_code() as u8),
                None => std::process::ExitCode::FAILURE,
            }
        }
    }
}
