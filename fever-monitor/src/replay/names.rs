//! Which recorded function a name asked by the front end means: the script runs as `__main__`,
//! so a name given with the script's module name (`app.main` for `app.py`) answers too.

use std::sync::Mutex;

use fever_core::replay::same_function;

static SCRIPT_MODULE: Mutex<Option<String>> = Mutex::new(None);

/// Sets the script's module name (its file name without `.py`; `None` for `-m`).
pub fn set_script_module(module: Option<String>) {
    *SCRIPT_MODULE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = module;
}

/// The script's module name.
pub fn script_module() -> Option<String> {
    SCRIPT_MODULE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Does the recorded function `recorded` answer to the name `asked`?
pub fn answers_to(recorded: &str, asked: &str) -> bool {
    same_function(recorded, asked, script_module().as_deref())
}
