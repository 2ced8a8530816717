//! Lição 02: runs `lesson02-queue` and `lesson02-queue-two-processes` and checks what their
//! Python listings guarantee.

use lesson_tests::{Lesson, StartMethod};

static QUEUE: Lesson = Lesson::new("lesson02-queue", "lesson02-queue");

static TWO_PROCESSES: Lesson = Lesson::new("lesson02-queue", "lesson02-queue-two-processes");

/// Every line `lesson02-queue` prints, PIDs redacted, in one possible order.
const QUEUE_EXPECTED: &[&str] = &[
    "Processo principal [PID] inicializado",
    "Processo [PID] iniciado",
    "Processo [PID] finalizado",
    "Mensagem lida: Mensagem do processo [PID]",
    "Processo principal [PID] finalizado",
];

/// Every line `lesson02-queue-two-processes` prints, PIDs redacted, in one possible order.
const TWO_PROCESSES_EXPECTED: &[&str] = &[
    "Processo principal [PID] inicializado",
    "Processo principal [PID] finalizado",
    "Processo [PID] iniciado",
    "Processo [PID] finalizado",
    "Processo [PID] iniciado",
    "Mensagem lida: Mensagem do processo [PID]",
    "Processo [PID] finalizado",
];

#[test]
fn queue_fork() {
    check_queue(StartMethod::Fork);
}

#[test]
fn queue_spawn() {
    check_queue(StartMethod::Spawn);
}

#[test]
fn two_processes_fork() {
    check_two_processes(StartMethod::Fork);
}

#[test]
fn two_processes_spawn() {
    check_two_processes(StartMethod::Spawn);
}

fn check_queue(method: StartMethod) {
    let transcript = QUEUE.run(method).expect_lines(QUEUE_EXPECTED);
    let main = transcript.main_pid();
    let producer = transcript.find_one_pid("Processo [PID] iniciado");
    transcript.assert_distinct(&[("main", main), ("producer", producer)]);
    // The main process joins the producer before get(), then prints its last line.
    transcript.assert_order(&[
        &format!("Processo {producer} iniciado"),
        &format!("Processo {producer} finalizado"),
        &format!("Mensagem lida: Mensagem do processo {producer}"),
        &format!("Processo principal {main} finalizado"),
    ]);
    transcript.assert_last(&format!("Processo principal {main} finalizado"));
}

fn check_two_processes(method: StartMethod) {
    let transcript = TWO_PROCESSES
        .run(method)
        .expect_lines(TWO_PROCESSES_EXPECTED);
    let main = transcript.main_pid();
    // The message names its producer; the consumer is the other process that started.
    let producer = transcript.find_one_pid("Mensagem lida: Mensagem do processo [PID]");
    let consumer = other_starter(&transcript, producer);
    transcript.assert_distinct(&[
        ("main", main),
        ("producer", producer),
        ("consumer", consumer),
    ]);
    // The main process prints "finalizado" right after both start() calls, racing with the
    // children, so it is only checked to follow its own first line.
    transcript.assert_order(&[
        &format!("Processo principal {main} inicializado"),
        &format!("Processo principal {main} finalizado"),
    ]);
    transcript.assert_order(&[
        &format!("Processo {producer} iniciado"),
        &format!("Processo {producer} finalizado"),
    ]);
    // The consumer prints "Mensagem lida" after its get() returns, between its own lines.
    transcript.assert_order(&[
        &format!("Processo {consumer} iniciado"),
        &format!("Mensagem lida: Mensagem do processo {producer}"),
        &format!("Processo {consumer} finalizado"),
    ]);
}

/// The PID of the process other than `producer` that printed "iniciado"; fails unless the
/// producer and exactly one other process did.
fn other_starter(transcript: &lesson_tests::Transcript, producer: u32) -> u32 {
    let starters: Vec<u32> = transcript
        .find("Processo [PID] iniciado")
        .into_iter()
        .flat_map(|found| found.pids)
        .collect();
    match starters.as_slice() {
        [first, second] if *first == producer => *second,
        [first, second] if *second == producer => *first,
        _ => transcript.fail(&format!(
            "expected the producer {producer} and one consumer to start, found {starters:?}"
        )),
    }
}
