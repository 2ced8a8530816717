//! Lição 02: what the two listings guarantee, each checked on a fork, a spawn and a forkserver run
//! and the README's sample run.

use lesson_tests::{PID, Transcript};

mod queue {
    lesson_tests::check_lesson!("lesson02-queue", super::queue_guarantees);
    lesson_tests::check_timeline!("lesson02-queue", super::queue_guarantees, processes = 2);
}

mod two_processes {
    lesson_tests::check_lesson!(
        "lesson02-queue-two-processes",
        super::two_processes_guarantees
    );
    lesson_tests::check_timeline!(
        "lesson02-queue-two-processes",
        super::two_processes_guarantees,
        processes = 3
    );
}

/// `lesson02-queue`: the whole order is forced. The main process joins the producer before
/// get(), and the message names the producer.
fn queue_guarantees(t: &Transcript) {
    let main = t.main_pid();
    let producer = t.find_one_pid(&format!("Processo {PID} iniciado"));
    t.assert_distinct(&[("main", main), ("producer", producer)]);
    let lines = [
        format!("Processo principal {main} inicializado"),
        format!("Processo {producer} iniciado"),
        format!("Processo {producer} finalizado"),
        format!("Mensagem lida: Mensagem do processo {producer}"),
        format!("Processo principal {main} finalizado"),
    ];
    t.assert_lines(&lines);
    t.assert_order(&lines);
}

/// `lesson02-queue-two-processes`: three PIDs; the message names its producer and is printed
/// by the consumer, between its own lines and after the producer started.
fn two_processes_guarantees(t: &Transcript) {
    let main = t.main_pid();
    let producer = t.find_one_pid(&format!("Mensagem lida: Mensagem do processo {PID}"));
    // The consumer is the other process that started.
    let started: Vec<u32> = t
        .find(&format!("Processo {PID} iniciado"))
        .into_iter()
        .flat_map(|m| m.pids)
        .collect();
    let consumer = match started.as_slice() {
        [a, b] if *a == producer => *b,
        [a, b] if *b == producer => *a,
        _ => t.fail(&format!(
            "expected the producer {producer} and one consumer to start"
        )),
    };
    t.assert_distinct(&[
        ("main", main),
        ("producer", producer),
        ("consumer", consumer),
    ]);
    let inicializado = format!("Processo principal {main} inicializado");
    let finalizado = format!("Processo principal {main} finalizado");
    let [
        producer_started,
        producer_ended,
        consumer_started,
        consumer_ended,
    ] = [
        (producer, "iniciado"),
        (producer, "finalizado"),
        (consumer, "iniciado"),
        (consumer, "finalizado"),
    ]
    .map(|(pid, what)| format!("Processo {pid} {what}"));
    let message = format!("Mensagem lida: Mensagem do processo {producer}");
    t.assert_lines(&[
        &inicializado,
        &finalizado,
        &producer_started,
        &producer_ended,
        &consumer_started,
        &message,
        &consumer_ended,
    ]);
    // The main process prints "finalizado" right after both start() calls, racing with the
    // children, so it is only checked to follow its own first line.
    t.assert_order(&[&inicializado, &finalizado]);
    t.assert_order(&[&producer_started, &producer_ended]);
    // The producer puts after "iniciado"; the consumer prints after its get() returns.
    t.assert_order(&[&producer_started, &message]);
    t.assert_order(&[&consumer_started, &message, &consumer_ended]);
}
