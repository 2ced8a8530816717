//! Lição 01: runs `lesson01-processes` and checks what its Python listing guarantees.

use lesson_tests::{Lesson, StartMethod};

static LESSON: Lesson = Lesson::new("lesson01-processes", "lesson01-processes");

/// Every line the listing prints, PIDs redacted, in one possible order.
const EXPECTED: &[&str] = &[
    "Processo principal [PID] inicializado",
    "Processo principal [PID] finalizado",
    "Processo [PID] iniciado",
    "Processo [PID] finalizado",
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
    let transcript = LESSON.run(method).expect_lines(EXPECTED);
    let main = transcript.main_pid();
    let child = transcript.find_one_pid("Processo [PID] iniciado");
    transcript.assert_distinct(&[("main", main), ("child", child)]);
    // The main process prints "finalizado" right after start(), racing with the child, so
    // only each process's own lines are in a guaranteed order.
    transcript.assert_order(&[
        &format!("Processo principal {main} inicializado"),
        &format!("Processo principal {main} finalizado"),
    ]);
    transcript.assert_order(&[
        &format!("Processo {child} iniciado"),
        &format!("Processo {child} finalizado"),
    ]);
}
