//! The engine with an embedded interpreter: consumers armed and disarmed while Python code runs,
//! library code left alone, no events left on once the last consumer is gone.

use std::ffi::CString;

use pyo3::ffi::PyObject;
use pyo3::prelude::*;

use super::{arm, disarm, At, Consumer, Event, Heard, Slot};
use crate::code_object::str_attr;
use fever_core::Project;

/// Counts starts and returns per code name.
#[derive(Default)]
struct Counter {
    names: Vec<String>,
    starts: Vec<u32>,
    returns: Vec<u32>,
}

impl Counter {
    fn starts_of(&self, name: &str) -> u32 {
        self.names
            .iter()
            .position(|n| n == name)
            .map_or(0, |i| self.starts[i])
    }

    fn returns_of(&self, name: &str) -> u32 {
        self.names
            .iter()
            .position(|n| n == name)
            .map_or(0, |i| self.returns[i])
    }
}

// SAFETY: runs no Python code, raises nothing.
unsafe impl Consumer for Counter {
    fn events(&self) -> u8 {
        Event::Start.bit() | Event::Return.bit()
    }

    unsafe fn adopt(&mut self, code: *mut PyObject) -> Option<u32> {
        // SAFETY: GIL held, live code (the engine's contract).
        let name = unsafe { str_attr(code, c"co_qualname") }.unwrap_or_default();
        self.names.push(name);
        self.starts.push(0);
        self.returns.push(0);
        u32::try_from(self.names.len() - 1).ok()
    }

    unsafe fn on(&mut self, event: Event, at: &At) -> Heard {
        // An entry this counter never gave (another consumer's) is not counted.
        let i = at.entry as usize;
        let counts = match event {
            Event::Start => &mut self.starts,
            Event::Return => &mut self.returns,
            _ => return Heard::Again,
        };
        if let Some(count) = counts.get_mut(i) {
            *count += 1;
        }
        Heard::Again
    }
}

/// The engine is the process's: tests that arm consumers take turns (the interpreter lets
/// another test's thread run between two bytecodes), and share one project folder (the engine
/// takes the first armed consumer's project for the whole process).
static ARMING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `body` with the project's modules (`(name, source)`) and the library's imported, and a
/// claimed tool id; then releases the tool and removes the files.
fn in_project(
    modules: &[(&str, &str)],
    library: &[(&str, &str)],
    body: impl FnOnce(Python<'_>, u8, &Project),
) {
    let _turn = ARMING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = std::env::temp_dir().join(format!("fever-engine-test-{}", std::process::id()));
    let (project_dir, library_dir) = (dir.join("project"), dir.join("library"));
    for (folder, files) in [(&project_dir, modules), (&library_dir, library)] {
        std::fs::create_dir_all(folder).unwrap();
        for (name, source) in files {
            std::fs::write(folder.join(format!("{name}.py")), source).unwrap();
        }
    }
    let project = Project::new(&project_dir).unwrap();
    Python::initialize();
    Python::attach(|py| {
        let tool = crate::monitoring::claim(py)
            .unwrap()
            .expect("a free tool id");
        let imports: Vec<String> = modules
            .iter()
            .map(|(name, _)| format!("import {name}"))
            .collect();
        run(
            py,
            &format!(
                "import sys\nsys.path[:0] = [{:?}, {:?}]\n{}",
                project_dir.display().to_string(),
                library_dir.display().to_string(),
                imports.join("\n")
            ),
        );
        body(py, tool, &project);
        crate::monitoring::release(py, tool).unwrap();
    });
    let _ = std::fs::remove_dir_all(&dir);
}

fn run(py: Python<'_>, code: &str) {
    py.run(&CString::new(code).unwrap(), None, None)
        .expect("test code runs");
}

fn events_on(py: Python<'_>, tool: u8) -> u32 {
    let monitoring = py.import("sys").unwrap().getattr("monitoring").unwrap();
    monitoring
        .call_method1("get_events", (tool,))
        .unwrap()
        .extract()
        .unwrap()
}

#[test]
fn consumers_come_and_go_while_the_program_runs() {
    let modules = [(
        "engine_proj",
        "import engine_lib\n\ndef f(x):\n    return engine_lib.h(x) + 1\n\ndef g(n):\n    return sum(f(i) for i in range(n))\n",
    )];
    let library = [("engine_lib", "def h(x):\n    return x\n")];
    in_project(&modules, &library, |py, tool, project| {
        let calls = "import engine_proj\nengine_proj.g(10)";

        arm(py, tool, project, Slot::Tracer, Box::<Counter>::default()).unwrap();
        run(py, calls);
        arm(py, tool, project, Slot::Cache, Box::<Counter>::default()).unwrap();
        run(py, calls);
        let first = disarm::<Counter>(py, Slot::Tracer).unwrap().unwrap();
        assert_eq!(first.starts_of("f"), 20);
        assert_eq!(first.returns_of("f"), 20);
        assert_eq!(first.starts_of("g"), 2);
        // Library code is never handed to a consumer.
        assert!(!first.names.iter().any(|n| n == "h"), "{:?}", first.names);
        // The other consumer keeps its events.
        assert_ne!(events_on(py, tool), 0);
        run(py, calls);
        let second = disarm::<Counter>(py, Slot::Cache).unwrap().unwrap();
        assert_eq!(second.starts_of("f"), 20);
        // The last one gone: no event is on, without restart_events().
        assert_eq!(events_on(py, tool), 0);
        run(py, calls);
        assert!(disarm::<Counter>(py, Slot::Cache).unwrap().is_none());

        // Armed again, a consumer sees the project's calls from the start.
        arm(
            py,
            tool,
            project,
            Slot::Checkpoints,
            Box::<Counter>::default(),
        )
        .unwrap();
        run(py, calls);
        let third = disarm::<Counter>(py, Slot::Checkpoints).unwrap().unwrap();
        assert_eq!(third.starts_of("f"), 10);
        assert_eq!(third.returns_of("f"), 10);
        assert_eq!(events_on(py, tool), 0);

        // Armed into an occupied slot, the new consumer adopts every code afresh: none of the
        // previous one's entries reach it.
        arm(
            py,
            tool,
            project,
            Slot::Tracer,
            Box::new(Counter::default()),
        )
        .unwrap();
        run(py, calls);
        let replacing = Counter {
            names: vec!["unrelated".into()],
            starts: vec![0],
            returns: vec![0],
        };
        arm(py, tool, project, Slot::Tracer, Box::new(replacing)).unwrap();
        run(py, calls);
        let fourth = disarm::<Counter>(py, Slot::Tracer).unwrap().unwrap();
        assert_eq!(fourth.starts_of("f"), 10, "{:?}", fourth.names);
        assert_eq!(fourth.starts_of("unrelated"), 0);
        assert_eq!(events_on(py, tool), 0);
    });
}

#[test]
fn thread_ident_is_pthread_self() {
    // SAFETY: no preconditions.
    let here = || unsafe { libc::pthread_self() } as u64;
    assert_eq!(super::thread_ident(), here());
    let there = std::thread::spawn(move || (super::thread_ident(), here()))
        .join()
        .unwrap();
    assert_eq!(there.0, there.1);
    assert_ne!(there.0, super::thread_ident());
}

#[test]
fn the_extra_slot_is_read_without_the_c_call() {
    use super::extra_slot::{ExtraSlot, Lookup};
    use std::sync::OnceLock;
    static INDEX: OnceLock<pyo3::ffi::Py_ssize_t> = OnceLock::new();
    Python::initialize();
    Python::attach(|py| {
        let slot = ExtraSlot::reserve(&INDEX);
        assert!(slot.reads_directly());
        let code = py
            .eval(c"compile('1 + 1', '<test>', 'eval')", None, None)
            .unwrap();
        let other = py
            .eval(c"compile('2', '<test>', 'eval')", None, None)
            .unwrap();
        // SAFETY: GIL held, live objects, no exception set.
        unsafe {
            assert!(matches!(slot.lookup(code.as_ptr()), Lookup::Unseen));
            assert!(slot.mark(code.as_ptr(), Some(0x1230)));
            assert!(matches!(
                slot.lookup(code.as_ptr()),
                Lookup::Project(0x1230)
            ));
            assert!(matches!(slot.lookup(other.as_ptr()), Lookup::Unseen));
            assert!(slot.mark(other.as_ptr(), None));
            assert!(matches!(slot.lookup(other.as_ptr()), Lookup::Other));
            // Not a code object.
            assert!(matches!(slot.lookup(py.None().as_ptr()), Lookup::Other));
        }
    });
}

/// Counts returns per code name, and says [`Heard::Enough`] after each return when `quiet`.
#[derive(Default)]
struct Quieting {
    quiet: bool,
    inner: Counter,
}

// SAFETY: runs no Python code, raises nothing.
unsafe impl Consumer for Quieting {
    fn events(&self) -> u8 {
        Event::Start.bit() | Event::Return.bit()
    }

    unsafe fn adopt(&mut self, code: *mut PyObject) -> Option<u32> {
        // SAFETY: guaranteed by the caller.
        unsafe { self.inner.adopt(code) }
    }

    unsafe fn on(&mut self, event: Event, at: &At) -> Heard {
        // SAFETY: guaranteed by the caller.
        let _ = unsafe { self.inner.on(event, at) };
        if self.quiet && event == Event::Return {
            Heard::Enough
        } else {
            Heard::Again
        }
    }
}

#[test]
fn an_event_every_consumer_has_had_enough_of_is_turned_off_until_a_consumer_is_armed() {
    let modules = [(
        "engine_quiet",
        "def f(x):\n    return x + 1\n\ndef g(n):\n    return sum(f(i) for i in range(n))\n",
    )];
    in_project(&modules, &[], |py, tool, project| {
        let calls = "import engine_quiet\nengine_quiet.g(10)";
        let quiet = || {
            Box::new(Quieting {
                quiet: true,
                ..Quieting::default()
            })
        };

        // Alone: f's return is heard once, then turned off at its instruction; starts go on.
        arm(py, tool, project, Slot::Tracer, quiet()).unwrap();
        run(py, calls);
        run(py, calls);
        let alone = disarm::<Quieting>(py, Slot::Tracer).unwrap().unwrap();
        assert_eq!(alone.inner.starts_of("f"), 20);
        assert_eq!(alone.inner.returns_of("f"), 1);

        // Armed again, it hears the return again: arming re-enabled the instruction.
        arm(py, tool, project, Slot::Tracer, quiet()).unwrap();
        run(py, calls);
        let again = disarm::<Quieting>(py, Slot::Tracer).unwrap().unwrap();
        assert_eq!(again.inner.returns_of("f"), 1);
        assert_eq!(again.inner.starts_of("f"), 10);

        // With a consumer that wants every return, nothing is turned off for either.
        arm(py, tool, project, Slot::Tracer, quiet()).unwrap();
        arm(py, tool, project, Slot::Cache, Box::<Quieting>::default()).unwrap();
        run(py, calls);
        run(py, calls);
        let wanting = disarm::<Quieting>(py, Slot::Cache).unwrap().unwrap();
        let quieting = disarm::<Quieting>(py, Slot::Tracer).unwrap().unwrap();
        assert_eq!(wanting.inner.returns_of("f"), 20);
        assert_eq!(quieting.inner.returns_of("f"), 20);
    });
}
