//! `shared::init()`, the `__main__` guard: what it refuses in the main process. (A spawned
//! child's side is in `spawn_refusals.rs`; a program's own arguments in the `lesson-tests`
//! package's `own_arguments.rs`.)

#[test]
fn init_off_the_main_thread_is_refused() {
    // A spawned child runs `main` up to the `init` call before it gets its target: on another
    // thread, that would be everything `main` did before starting the thread.
    let outcome = std::thread::spawn(shared::init)
        .join()
        .expect("the thread ran");
    assert_eq!(outcome, Err(shared::InitError::NotMainThread));
    let message = shared::InitError::NotMainThread.to_string();
    assert!(message.contains("main thread"), "{message}");
}
