//! The agent protocol: typed messages between husk (the VMM) and husk-agent
//! (the guest's /init), framed over a byte stream — COM2, a 16550 UART.
//!
//! A serial line is not a reliable transport: until the guest has set the
//! tty raw, the line discipline may eat or rewrite bytes, and the kernel's
//! own early output could in principle land there. So every frame carries
//! its length twice (plain and complemented, so a corrupt length is seen at
//! once instead of making the reader wait for megabytes) and a CRC-32 of its
//! payload; the decoder drops bytes until it finds a frame that checks out.
//!
//! ```text
//! frame   = "HK" | len: u32 LE | !len: u32 LE | payload[len] | crc32(payload): u32 LE
//! payload = type: u8 | body
//! ```
//!
//! Bodies are little-endian binary, except the process spec (JSON), so that
//! the test guest, written in assembly, can speak Ready/Start/Exited too.
//! This file is shared verbatim by the host and by the agent binary.

use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};

pub const MAGIC: [u8; 2] = *b"HK";
const HEADER_LEN: usize = 10;
const TRAILER_LEN: usize = 4;
/// Bounds memory held for one frame; stdio is sent in much smaller chunks.
pub const MAX_PAYLOAD: usize = 1 << 20;
/// Stdio chunk size: small frames keep signals and exits from queueing
/// behind bulk output on a slow line.
pub const MAX_DATA_CHUNK: usize = 4096;
/// Bumped when a message changes shape; sent in Ready and checked by husk.
pub const PROTOCOL_VERSION: u32 = 1;
/// The container's main process; exec'd processes get ids from husk.
pub const INIT_ID: u32 = 0;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("agent channel: frame payload of {0} bytes exceeds the {MAX_PAYLOAD}-byte limit")]
    TooLarge(usize),
    #[error("agent channel: message type {0:#04x} is unknown")]
    UnknownType(u8),
    #[error("agent channel: message {kind}: {why}")]
    BadBody { kind: &'static str, why: String },
    #[error("agent channel: the peer closed the stream")]
    Closed,
    #[error("agent channel: {0}")]
    Io(#[from] io::Error),
}

type Result<T> = std::result::Result<T, ChannelError>;

/// Where husk puts the agent's config in the initramfs.
pub const CONFIG_PATH: &str = "/.husk/config.json";
/// The agent's end of the channel: the guest's COM2.
pub const AGENT_TTY: &str = "/dev/ttyS1";

/// What the agent needs before Start: written by husk as JSON at
/// `CONFIG_PATH` when it builds the initramfs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentConfig {
    pub hostname: Option<String>,
    /// The main process, run when Start carries none.
    pub process: Process,
}

/// The process part of the OCI spec that the agent applies in the guest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Process {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub terminal: bool,
    pub no_new_privileges: bool,
    pub rlimits: Vec<Rlimit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    /// OCI name, e.g. "RLIMIT_NOFILE".
    #[serde(rename = "type")]
    pub kind: String,
    pub soft: u64,
    pub hard: u64,
}

/// How a process ended, as waitpid tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl ExitStatus {
    /// The shell convention: a code, or 128 + the signal.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// agent → host: booted, config read, waiting for Start.
    Ready {
        version: u32,
    },
    /// host → agent: run the main process (id 0). `None` runs the process
    /// from the config embedded in the initramfs.
    Start {
        process: Option<Process>,
    },
    /// host → agent: run another process in the guest.
    Exec {
        id: u32,
        process: Process,
    },
    /// agent → host: the process `id` runs as guest pid `pid`.
    Started {
        id: u32,
        pid: u32,
    },
    /// agent → host: the process `id` could not be started.
    Failed {
        id: u32,
        message: String,
    },
    Signal {
        id: u32,
        sig: i32,
    },
    Stdin {
        id: u32,
        data: Vec<u8>,
    },
    /// Empty data means end of stream.
    Stdout {
        id: u32,
        data: Vec<u8>,
    },
    Stderr {
        id: u32,
        data: Vec<u8>,
    },
    CloseStdin {
        id: u32,
    },
    WinSize {
        id: u32,
        rows: u16,
        cols: u16,
    },
    /// agent → host: sent after the process's output has been relayed.
    Exited {
        id: u32,
        status: ExitStatus,
    },
}

mod ty {
    pub const READY: u8 = 0x01;
    pub const START: u8 = 0x02;
    pub const EXEC: u8 = 0x03;
    pub const STARTED: u8 = 0x04;
    pub const FAILED: u8 = 0x05;
    pub const SIGNAL: u8 = 0x06;
    pub const STDIN: u8 = 0x07;
    pub const STDOUT: u8 = 0x08;
    pub const STDERR: u8 = 0x09;
    pub const CLOSE_STDIN: u8 = 0x0a;
    pub const WINSIZE: u8 = 0x0b;
    pub const EXITED: u8 = 0x0c;
}

impl Msg {
    pub fn name(&self) -> &'static str {
        match self {
            Msg::Ready { .. } => "Ready",
            Msg::Start { .. } => "Start",
            Msg::Exec { .. } => "Exec",
            Msg::Started { .. } => "Started",
            Msg::Failed { .. } => "Failed",
            Msg::Signal { .. } => "Signal",
            Msg::Stdin { .. } => "Stdin",
            Msg::Stdout { .. } => "Stdout",
            Msg::Stderr { .. } => "Stderr",
            Msg::CloseStdin { .. } => "CloseStdin",
            Msg::WinSize { .. } => "WinSize",
            Msg::Exited { .. } => "Exited",
        }
    }

    fn payload(&self) -> Vec<u8> {
        let mut p = Vec::new();
        match self {
            Msg::Ready { version } => put(&mut p, ty::READY, &[&version.to_le_bytes()]),
            Msg::Start { process } => put(&mut p, ty::START, &[&json(process)]),
            Msg::Exec { id, process } => {
                put(&mut p, ty::EXEC, &[&id.to_le_bytes(), &json(process)])
            }
            Msg::Started { id, pid } => put(
                &mut p,
                ty::STARTED,
                &[&id.to_le_bytes(), &pid.to_le_bytes()],
            ),
            Msg::Failed { id, message } => {
                put(&mut p, ty::FAILED, &[&id.to_le_bytes(), message.as_bytes()])
            }
            Msg::Signal { id, sig } => {
                put(&mut p, ty::SIGNAL, &[&id.to_le_bytes(), &sig.to_le_bytes()])
            }
            Msg::Stdin { id, data } => put(&mut p, ty::STDIN, &[&id.to_le_bytes(), data]),
            Msg::Stdout { id, data } => put(&mut p, ty::STDOUT, &[&id.to_le_bytes(), data]),
            Msg::Stderr { id, data } => put(&mut p, ty::STDERR, &[&id.to_le_bytes(), data]),
            Msg::CloseStdin { id } => put(&mut p, ty::CLOSE_STDIN, &[&id.to_le_bytes()]),
            Msg::WinSize { id, rows, cols } => put(
                &mut p,
                ty::WINSIZE,
                &[&id.to_le_bytes(), &rows.to_le_bytes(), &cols.to_le_bytes()],
            ),
            Msg::Exited { id, status } => {
                let (kind, v) = match status {
                    ExitStatus::Code(c) => (0u8, *c),
                    ExitStatus::Signal(s) => (1u8, *s),
                };
                put(
                    &mut p,
                    ty::EXITED,
                    &[&id.to_le_bytes(), &[kind], &v.to_le_bytes()],
                )
            }
        }
        p
    }

    fn from_payload(p: &[u8]) -> Result<Msg> {
        let (&t, body) = p.split_first().ok_or(ChannelError::BadBody {
            kind: "?",
            why: "empty payload".into(),
        })?;
        let mut r = Body { b: body, kind: "?" };
        let m = match t {
            ty::READY => {
                r.kind = "Ready";
                Msg::Ready { version: r.u32()? }
            }
            ty::START => {
                r.kind = "Start";
                Msg::Start { process: r.json()? }
            }
            ty::EXEC => {
                r.kind = "Exec";
                Msg::Exec {
                    id: r.u32()?,
                    process: r.json()?,
                }
            }
            ty::STARTED => {
                r.kind = "Started";
                Msg::Started {
                    id: r.u32()?,
                    pid: r.u32()?,
                }
            }
            ty::FAILED => {
                r.kind = "Failed";
                let id = r.u32()?;
                Msg::Failed {
                    id,
                    message: String::from_utf8_lossy(r.rest()).into_owned(),
                }
            }
            ty::SIGNAL => {
                r.kind = "Signal";
                Msg::Signal {
                    id: r.u32()?,
                    sig: r.u32()? as i32,
                }
            }
            ty::STDIN | ty::STDOUT | ty::STDERR => {
                r.kind = "stdio";
                let id = r.u32()?;
                let data = r.rest().to_vec();
                match t {
                    ty::STDIN => Msg::Stdin { id, data },
                    ty::STDOUT => Msg::Stdout { id, data },
                    _ => Msg::Stderr { id, data },
                }
            }
            ty::CLOSE_STDIN => {
                r.kind = "CloseStdin";
                Msg::CloseStdin { id: r.u32()? }
            }
            ty::WINSIZE => {
                r.kind = "WinSize";
                Msg::WinSize {
                    id: r.u32()?,
                    rows: r.u16()?,
                    cols: r.u16()?,
                }
            }
            ty::EXITED => {
                r.kind = "Exited";
                let id = r.u32()?;
                let kind = r.take(1)?[0];
                let v = r.u32()? as i32;
                let status = match kind {
                    0 => ExitStatus::Code(v),
                    1 => ExitStatus::Signal(v),
                    k => {
                        return Err(ChannelError::BadBody {
                            kind: "Exited",
                            why: format!("status kind {k}"),
                        })
                    }
                };
                Msg::Exited { id, status }
            }
            t => return Err(ChannelError::UnknownType(t)),
        };
        if !r.b.is_empty() && !matches!(t, ty::FAILED | ty::STDIN | ty::STDOUT | ty::STDERR) {
            return Err(ChannelError::BadBody {
                kind: r.kind,
                why: format!("{} trailing bytes", r.b.len()),
            });
        }
        Ok(m)
    }

    /// The whole frame, ready to write to the line.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let payload = self.payload();
        if payload.len() > MAX_PAYLOAD {
            return Err(ChannelError::TooLarge(payload.len()));
        }
        let len = payload.len() as u32;
        let mut f = Vec::with_capacity(HEADER_LEN + payload.len() + TRAILER_LEN);
        f.extend_from_slice(&MAGIC);
        f.extend_from_slice(&len.to_le_bytes());
        f.extend_from_slice(&(!len).to_le_bytes());
        f.extend_from_slice(&payload);
        f.extend_from_slice(&crc32(&payload).to_le_bytes());
        Ok(f)
    }
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    // Plain structs of strings and numbers always serialize.
    serde_json::to_vec(v).expect("process spec serializes")
}

fn put(p: &mut Vec<u8>, t: u8, parts: &[&[u8]]) {
    p.push(t);
    for part in parts {
        p.extend_from_slice(part);
    }
}

struct Body<'a> {
    b: &'a [u8],
    kind: &'static str,
}

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.b.len() < n {
            return Err(ChannelError::BadBody {
                kind: self.kind,
                why: "body too short".into(),
            });
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.b)
    }
    fn json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        let kind = self.kind;
        serde_json::from_slice(self.rest()).map_err(|e| ChannelError::BadBody {
            kind,
            why: e.to_string(),
        })
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib): bitwise, so the assembly test
/// guest can compute the same value with a five-instruction loop.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Incremental frame decoder: feed it bytes as they arrive, take messages out.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes dropped while resynchronising: line noise, or output that was
    /// not ours. Kept for diagnostics.
    pub skipped: u64,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, if any. A frame that checks out but does
    /// not parse is returned as an error and skipped; corrupt frames are
    /// dropped silently (counted in `skipped`).
    pub fn next_msg(&mut self) -> Option<Result<Msg>> {
        loop {
            let start = self.buf.windows(2).position(|w| w == MAGIC);
            match start {
                Some(i) => self.drop_front(i),
                None => {
                    // Keep a trailing 'H': it may be half of the next magic.
                    let keep = usize::from(self.buf.last() == Some(&MAGIC[0]));
                    self.drop_front(self.buf.len() - keep);
                    return None;
                }
            }
            if self.buf.len() < HEADER_LEN {
                return None;
            }
            let len = u32::from_le_bytes(self.buf[2..6].try_into().unwrap());
            let inv = u32::from_le_bytes(self.buf[6..10].try_into().unwrap());
            if len != !inv || len as usize > MAX_PAYLOAD {
                self.drop_front(1);
                continue;
            }
            let total = HEADER_LEN + len as usize + TRAILER_LEN;
            if self.buf.len() < total {
                return None;
            }
            let payload = &self.buf[HEADER_LEN..HEADER_LEN + len as usize];
            let crc = u32::from_le_bytes(self.buf[total - 4..total].try_into().unwrap());
            if crc32(payload) != crc {
                self.drop_front(1);
                continue;
            }
            let msg = Msg::from_payload(payload);
            self.buf.drain(..total);
            return Some(msg);
        }
    }

    fn drop_front(&mut self, n: usize) {
        self.skipped += n as u64;
        self.buf.drain(..n);
    }
}

/// A blocking channel over any byte stream (a unix socket to QEMU's COM2
/// in tests, a tty in the agent). Timeouts belong to the stream.
pub struct Channel<S> {
    stream: S,
    dec: Decoder,
}

impl<S: Read + Write> Channel<S> {
    pub fn new(stream: S) -> Self {
        Channel {
            stream,
            dec: Decoder::new(),
        }
    }

    pub fn send(&mut self, m: &Msg) -> Result<()> {
        self.stream.write_all(&m.encode()?)?;
        self.stream.flush()?;
        Ok(())
    }

    pub fn recv(&mut self) -> Result<Msg> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(m) = self.dec.next_msg() {
                return m;
            }
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Err(ChannelError::Closed);
            }
            self.dec.push(&buf[..n]);
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    pub fn skipped(&self) -> u64 {
        self.dec.skipped
    }
}

#[cfg(test)]
#[path = "channel_tests.rs"]
mod tests;
