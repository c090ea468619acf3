fn main() {
    std::process::exit(husk::cli::main());
}
