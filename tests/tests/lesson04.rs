//! Lição 04: runs `lesson04-joinable` and checks what its Python listing guarantees.

use lesson_tests::{Lesson, StartMethod};

static LESSON: Lesson = Lesson::new("lesson04-joinable", "lesson04-joinable");

/// The queue right after the main process put the three tasks in it (maxsize 3).
const FULL_QUEUE: &str = "qsize(): 3 empty(): False full(): True";

/// The queue once join() has returned: every task is done.
const EMPTY_QUEUE: &str = "qsize(): 0 empty(): True full(): False";

/// Every line the listing prints, PIDs redacted, in one possible order.
const EXPECTED: &[&str] = &[
    "Processo principal [PID] inicializado",
    FULL_QUEUE,
    "Processo [PID] iniciado",
    "Processo [PID] concluiu: Tarefa 1",
    "Processo [PID] concluiu: Tarefa 2",
    "Processo [PID] concluiu: Tarefa 3",
    EMPTY_QUEUE,
    "Processo principal [PID] finalizado",
];

#[test]
fn fork() {
    check(StartMethod::Fork);
}

#[test]
fn spawn() {
    check(StartMethod::Spawn);
}

fn check(method: StartMethod) {
    // Also checks that the daemon worker, which loops forever, is gone once the main exits.
    let transcript = LESSON.run(method).expect_lines(EXPECTED);
    let main = transcript.main_pid();
    transcript.assert_at(1, FULL_QUEUE);
    let worker = transcript.find_one_pid("Processo [PID] iniciado");
    transcript.assert_distinct(&[("main", main), ("worker", worker)]);
    // One worker takes the tasks in FIFO order; join() returns after the last task_done().
    transcript.assert_order(&[
        &format!("Processo {worker} iniciado"),
        &format!("Processo {worker} concluiu: Tarefa 1"),
        &format!("Processo {worker} concluiu: Tarefa 2"),
        &format!("Processo {worker} concluiu: Tarefa 3"),
        EMPTY_QUEUE,
    ]);
    transcript.assert_last(&format!("Processo principal {main} finalizado"));
}
