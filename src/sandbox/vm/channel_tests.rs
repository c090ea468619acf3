use super::*;

fn all_msgs() -> Vec<Msg> {
    let p = Process {
        args: vec!["/bin/sh".into(), "-c".into(), "echo hi".into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        uid: 1000,
        gid: 1000,
        additional_gids: vec![10, 20],
        umask: Some(0o022),
        terminal: true,
        no_new_privileges: true,
        rlimits: vec![Rlimit {
            kind: "RLIMIT_NOFILE".into(),
            soft: 1024,
            hard: 1024,
        }],
    };
    vec![
        Msg::Ready {
            version: PROTOCOL_VERSION,
        },
        Msg::Start { process: None },
        Msg::Start {
            process: Some(p.clone()),
        },
        Msg::Exec { id: 3, process: p },
        Msg::Started { id: 3, pid: 42 },
        Msg::Failed {
            id: 3,
            message: "exec /nope: No such file or directory".into(),
        },
        Msg::Signal { id: 0, sig: 15 },
        Msg::Stdin {
            id: 0,
            data: b"line\n".to_vec(),
        },
        Msg::Stdout {
            id: 0,
            data: (0..=255).collect(),
        },
        Msg::Stderr {
            id: 1,
            data: vec![],
        },
        Msg::CloseStdin { id: 0 },
        Msg::WinSize {
            id: 0,
            rows: 24,
            cols: 80,
        },
        Msg::Exited {
            id: 0,
            status: ExitStatus::Code(7),
        },
        Msg::Exited {
            id: 2,
            status: ExitStatus::Signal(9),
        },
    ]
}

#[test]
fn every_message_round_trips() {
    for m in all_msgs() {
        let f = m.encode().unwrap();
        let mut d = Decoder::new();
        d.push(&f);
        assert_eq!(d.next_msg().unwrap().unwrap(), m);
        assert!(d.next_msg().is_none());
        assert_eq!(d.skipped, 0);
    }
}

#[test]
fn byte_at_a_time_and_back_to_back() {
    let msgs = all_msgs();
    let stream: Vec<u8> = msgs.iter().flat_map(|m| m.encode().unwrap()).collect();
    let mut d = Decoder::new();
    let mut got = Vec::new();
    for b in stream {
        d.push(&[b]);
        while let Some(m) = d.next_msg() {
            got.push(m.unwrap());
        }
    }
    assert_eq!(got, msgs);
}

#[test]
fn resyncs_after_garbage_and_corruption() {
    let a = Msg::Ready { version: 1 }.encode().unwrap();
    let b = Msg::Exited {
        id: 0,
        status: ExitStatus::Code(3),
    }
    .encode()
    .unwrap();
    let mut corrupt = Msg::Stdout {
        id: 0,
        data: b"HKHKHK".to_vec(),
    }
    .encode()
    .unwrap();
    let n = corrupt.len();
    corrupt[n - 6] ^= 0x40; // one flipped bit in the payload: CRC must catch it
    let mut stream = b"[    0.1] console noise HK\x05\x00 H".to_vec();
    stream.extend(&a);
    stream.extend(&corrupt);
    stream.extend(b"\xff\xffHK");
    stream.extend(&b);
    let mut d = Decoder::new();
    d.push(&stream);
    assert_eq!(d.next_msg().unwrap().unwrap(), Msg::Ready { version: 1 });
    assert_eq!(
        d.next_msg().unwrap().unwrap(),
        Msg::Exited {
            id: 0,
            status: ExitStatus::Code(3)
        }
    );
    assert!(d.next_msg().is_none());
    assert!(d.skipped >= corrupt.len() as u64);
}

#[test]
fn crc_is_zlib_crc32() {
    // The standard check value of CRC-32/ISO-HDLC.
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn well_framed_but_unknown_type_is_an_error_then_continues() {
    let payload = [0x7fu8, 1, 2];
    let mut f = MAGIC.to_vec();
    f.extend(3u32.to_le_bytes());
    f.extend((!3u32).to_le_bytes());
    f.extend(payload);
    f.extend(crc32(&payload).to_le_bytes());
    f.extend(Msg::CloseStdin { id: 1 }.encode().unwrap());
    let mut d = Decoder::new();
    d.push(&f);
    assert!(matches!(
        d.next_msg(),
        Some(Err(ChannelError::UnknownType(0x7f)))
    ));
    assert_eq!(d.next_msg().unwrap().unwrap(), Msg::CloseStdin { id: 1 });
}

#[test]
fn channel_over_a_socketpair() {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut ca = Channel::new(a);
    let mut cb = Channel::new(b);
    ca.send(&Msg::Signal { id: 0, sig: 2 }).unwrap();
    assert_eq!(cb.recv().unwrap(), Msg::Signal { id: 0, sig: 2 });
    drop(ca);
    assert!(matches!(cb.recv(), Err(ChannelError::Closed)));
}
