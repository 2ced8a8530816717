//! Lição 03: runs `lesson03-pipe` and checks what its Python listing guarantees.

use lesson_tests::{Lesson, StartMethod};

static LESSON: Lesson = Lesson::new("lesson03-pipe", "lesson03-pipe");

/// Every line the listing prints, PIDs redacted, in one possible order.
const EXPECTED: &[&str] = &[
    "Processo principal [PID] inicializado",
    "Processo [PID] iniciado",
    "Processo [PID] ouviu: Olá, aqui é o processo principal [PID]",
    "Processo [PID] finalizado",
    "Processo principal [PID] ouviu: Olá, aqui é o processo [PID]",
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
    let transcript = LESSON.run(method).expect_lines(EXPECTED);
    let main = transcript.main_pid();
    let child = transcript.find_one_pid("Processo [PID] iniciado");
    transcript.assert_distinct(&[("main", main), ("child", child)]);
    // Each message names its sender. The child answers only after it has heard the main
    // process, and the main process prints what it heard only after recv() returns.
    let child_heard = format!("Processo {child} ouviu: Olá, aqui é o processo principal {main}");
    let main_heard = format!("Processo principal {main} ouviu: Olá, aqui é o processo {child}");
    transcript.assert_order(&[
        &format!("Processo {child} iniciado"),
        &child_heard,
        &format!("Processo {child} finalizado"),
    ]);
    transcript.assert_order(&[&child_heard, &main_heard]);
    // The main process joins the child before its last line.
    transcript.assert_last(&format!("Processo principal {main} finalizado"));
}
