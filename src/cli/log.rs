//! Logging to --log FILE (or stderr), as text or runc-shaped JSON lines:
//! {"level":"error","msg":"...","time":"..."} — containerd reads the last
//! error from that file.

use std::io::Write;
use std::sync::Mutex;

pub struct Logger {
    file: Option<Mutex<std::fs::File>>,
    json: bool,
    level: log::LevelFilter,
}

impl Logger {
    pub fn install(path: Option<&str>, format: &str, debug: bool) -> Result<(), String> {
        let file = match path {
            Some(p) if !p.is_empty() => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| format!("--log {p}: {e}"))?,
            )),
            _ => None,
        };
        let level = if debug {
            log::LevelFilter::Debug
        } else {
            log::LevelFilter::Warn
        };
        let logger = Logger {
            file,
            json: format == "json",
            level,
        };
        log::set_max_level(level);
        let _ = log::set_boxed_logger(Box::new(logger));
        Ok(())
    }
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let level = r.level().as_str().to_lowercase();
        let msg = r.args().to_string();
        let time = crate::sys::time::now();
        match &self.file {
            Some(f) => {
                let line = if self.json {
                    serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
                } else {
                    format!("time=\"{time}\" level={level} msg={msg:?}")
                };
                if let Ok(mut f) = f.lock() {
                    let _ = writeln!(f, "{line}");
                }
            }
            None => {
                // Errors reach stderr from main(); don't print them twice.
                if r.level() != log::Level::Error {
                    eprintln!("husk: {level}: {msg}");
                }
            }
        }
    }

    fn flush(&self) {}
}
