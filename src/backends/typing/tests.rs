use super::*;

fn backend() -> Typing {
    Typing {
        api: None,
        fortune: PathBuf::from("/test/fortune"),
        calls: Arc::default(),
        next_saying: 0,
    }
}

fn start(backend: &mut Typing, prompt: &str, now: Instant) -> Box<dyn EventSource> {
    let request = HandoffData {
        prompt: prompt.into(),
        ..HandoffData::default()
    };
    match backend.start(request, None, now) {
        Ok(Start::Local(source)) => source,
        _ => panic!("the typing backend is local"),
    }
}

/// One produce call: the events it wrote and what it said next.
fn step(source: &mut dyn EventSource) -> (String, Next) {
    let mut out = Vec::new();
    let next = source.produce(&mut EventSink::new(&mut out));
    (String::from_utf8(out).unwrap(), next)
}

/// Types to the end: the `(char, index)` of every event and every pause, checking the frames.
fn type_out(source: &mut dyn EventSource) -> (String, Vec<usize>, Vec<Duration>) {
    let (mut text, mut indexes, mut pauses) = (String::new(), Vec::new(), Vec::new());
    loop {
        let (frame, next) = step(source);
        if next == Next::Complete {
            assert_eq!(frame, "");
            return (text, indexes, pauses);
        }
        let json = frame
            .strip_prefix("data: ")
            .and_then(|f| f.strip_suffix("\n\n"))
            .unwrap();
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        text.push_str(value["char"].as_str().unwrap());
        indexes.push(value["index"].as_u64().unwrap() as usize);
        let Next::After(pause) = next else {
            panic!("expected a pause, got {next:?}");
        };
        pauses.push(pause);
    }
}

/// Starts a quote stream and takes its `Run`.
fn asked(source: &mut dyn EventSource) -> Command {
    match step(source) {
        (frame, Next::Run(command)) if frame.is_empty() => command,
        other => panic!("expected a fortune run, got {other:?}"),
    }
}

fn quoted(quote: &str) -> String {
    format!("I don't know anything about that, but {quote}")
}

#[test]
fn the_fixed_prompt_types_the_fixed_answer_with_pauses() {
    let mut source = start(&mut backend(), FIXED_PROMPT, Instant::now());
    let (text, indexes, pauses) = type_out(source.as_mut());
    assert_eq!(text, FIXED_ANSWER);
    let want: Vec<usize> = FIXED_ANSWER.char_indices().map(|(i, _)| i).collect();
    assert_eq!(indexes, want);
    let want: Vec<Duration> = FIXED_ANSWER.chars().map(pause_after).collect();
    assert_eq!(pauses, want);
}

#[test]
fn other_prompts_run_fortune_literature_and_type_the_quote() {
    let mut source = start(&mut backend(), "anything", Instant::now());
    let command = asked(source.as_mut());
    assert_eq!(
        command,
        Command {
            program: PathBuf::from("/test/fortune"),
            args: vec!["literature".into()],
            timeout: Duration::from_millis(500),
            max_output: 4096,
        }
    );
    source.on_command(CommandResult::Exited {
        success: true,
        stdout: b"The pen is mightier\n  than the sword.\n\t\t-- Edward Bulwer-Lytton\n".to_vec(),
        truncated: false,
    });
    let (text, _, _) = type_out(source.as_mut());
    assert_eq!(text, quoted("the pen is mightier than the sword."));
}

#[test]
fn indexes_are_byte_offsets() {
    let mut source = start(&mut backend(), "x", Instant::now());
    asked(source.as_mut());
    source.on_command(CommandResult::Exited {
        success: true,
        stdout: "Ünïcode 😀 ok.".as_bytes().to_vec(),
        truncated: false,
    });
    let (text, indexes, _) = type_out(source.as_mut());
    let answer = quoted("ünïcode 😀 ok.");
    assert_eq!(text, answer);
    let intro = QUOTE_INTRO.len();
    assert_eq!(&indexes[intro..intro + 3], [intro, intro + 2, intro + 3]);
    assert_eq!(*indexes.last().unwrap(), answer.len() - 1);
}

#[test]
fn anything_but_a_clean_quote_types_a_saying() {
    let results = [
        CommandResult::Failed("did not finish in time and was killed".into()),
        CommandResult::Failed("could not be started: not found".into()),
        CommandResult::Exited {
            success: false,
            stdout: b"Some words.".to_vec(),
            truncated: false,
        },
        CommandResult::Exited {
            success: true,
            stdout: b"Cut off in the mid".to_vec(),
            truncated: true,
        },
        CommandResult::Exited {
            success: true,
            stdout: b" \n\t-- only an attribution\n".to_vec(),
            truncated: false,
        },
    ];
    let mut typing = backend();
    for (i, result) in results.into_iter().enumerate() {
        // Far enough apart that every stream may call.
        let now = Instant::now() + Duration::from_secs(i as u64);
        let mut source = start(&mut typing, "x", now);
        asked(source.as_mut());
        source.on_command(result);
        let (text, _, _) = type_out(source.as_mut());
        assert_eq!(text, quoted(&lowercase_first(SAYINGS[i])), "case {i}");
    }
}

#[test]
fn one_call_per_ten_milliseconds_across_streams() {
    let mut typing = backend();
    let t0 = Instant::now();
    let runs = |typing: &mut Typing, at: Duration| {
        let mut source = start(typing, "x", t0 + at);
        matches!(step(source.as_mut()).1, Next::Run(_))
    };
    assert!(runs(&mut typing, Duration::ZERO));
    assert!(!runs(&mut typing, Duration::from_millis(5)));
    assert!(!runs(&mut typing, Duration::from_millis(9)));
    assert!(runs(&mut typing, Duration::from_millis(10)));
    assert!(!runs(&mut typing, Duration::from_millis(19)));
    assert!(runs(&mut typing, Duration::from_millis(30)));
    // The fixed answer never calls, so it does not use up the allowance.
    start(&mut typing, FIXED_PROMPT, t0 + Duration::from_millis(45));
    assert!(runs(&mut typing, Duration::from_millis(46)));
}

#[test]
fn a_rate_limited_stream_types_a_saying_at_once_and_sayings_take_turns() {
    let mut typing = backend();
    let now = Instant::now();
    let mut first = start(&mut typing, "x", now);
    asked(first.as_mut());
    let mut texts = Vec::new();
    for _ in 0..SAYINGS.len() + 1 {
        let mut limited = start(&mut typing, "x", now);
        texts.push(type_out(limited.as_mut()).0);
    }
    // The first stream took saying 0 as its fallback.
    for (i, text) in texts.iter().enumerate() {
        let saying = SAYINGS[(i + 1) % SAYINGS.len()];
        assert_eq!(*text, quoted(&lowercase_first(saying)));
    }
}

#[test]
fn a_source_asked_before_its_result_types_the_saying() {
    let mut source = start(&mut backend(), "x", Instant::now());
    asked(source.as_mut());
    let (text, _, _) = type_out(source.as_mut());
    assert_eq!(text, quoted(&lowercase_first(SAYINGS[0])));
    // A late result changes nothing.
    source.on_command(CommandResult::Failed("late".into()));
    assert_eq!(step(source.as_mut()).1, Next::Complete);
}

#[test]
fn the_fortune_rate_limit_is_shared_by_every_worker() {
    let wide = DaemonWide::default();
    let (mut first, mut second) = (backend(), backend());
    first.share(&wide);
    second.share(&wide);
    let now = Instant::now();
    let mut asking = start(&mut first, "hi", now);
    asked(&mut *asking);
    // Another worker, 5 ms later: the daemon called fortune too recently.
    let mut saying = start(&mut second, "hi", now + Duration::from_millis(5));
    assert!(
        matches!(step(&mut *saying).1, Next::After(_)),
        "typed a saying"
    );
    let mut later = start(&mut second, "hi", now + CALL_INTERVAL);
    asked(&mut *later);
}
