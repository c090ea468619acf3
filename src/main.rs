fn main() {
    // A closed stdout (`husk list | head`) ends husk quietly, as it does any
    // Unix tool; sockets are written with MSG_NOSIGNAL.
    // SAFETY: setting a signal disposition before anything else runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    std::process::exit(husk::cli::main());
}
