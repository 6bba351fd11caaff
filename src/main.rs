fn main() {
    let config = streaming_daemon::config::Config::default();
    println!("{}", config.server.socket_path.display());
}
