//! Linker sections of entry points: where a child finds the function it was sent, by an
//! offset that its parent computed in the same executable. One type and one macro, used by
//! the spawn payload (`shared_spawn_entries`) and by the pool (`shared_pool_entries`).

/// The bounds `[start, stop)` of a linker section of this image's entry points.
#[derive(Clone, Copy)]
pub(crate) struct Section {
    start: usize,
    stop: usize,
}

impl Section {
    /// The section between the linker's `__start_`/`__stop_` symbols (see [`entry_section`]).
    pub(crate) fn new(start: usize, stop: usize) -> Section {
        Section { start, stop }
    }

    /// The section's size: a child refuses offsets made by a parent whose section differs,
    /// which a different build of the program would.
    pub(crate) fn len(self) -> u64 {
        (self.stop - self.start) as u64
    }

    /// Where `address` lies in the section, as an offset from its start: `None` if it lies
    /// outside the section, or the section or the address outside the main executable (in a
    /// shared library, which an `exec` of the executable alone would not have).
    pub(crate) fn offset_of(self, address: usize) -> Option<u64> {
        let in_executable = super::process::in_main_executable(self.start)
            && super::process::in_main_executable(address);
        ((self.start..self.stop).contains(&address) && in_executable)
            .then(|| (address - self.start) as u64)
    }

    /// The address `offset` bytes into the section, if that lies inside it *and* a function
    /// starts there ([`super::process::is_function_start`]): in a section of functions, an
    /// offset into the middle of one is refused like any other, never jumped to.
    pub(crate) fn entry_start(self, offset: u64) -> Option<usize> {
        let offset = usize::try_from(offset).ok()?;
        (offset < self.stop - self.start)
            .then(|| self.start + offset)
            .filter(|&address| super::process::is_function_start(address))
    }
}

/// Declares a linker section of entry points: the function `$bounds()` that gives its
/// [`Section`], and its floor, a function that keeps the section non-empty (so that the
/// linker defines its bounds) in a program that instantiates none of its entries, and that
/// `--gc-sections` keeps along with the section. Every entry is then a function marked
/// `#[unsafe(link_section = "NAME")]`, `#[inline(never)]`, of the floor's type.
///
/// The section's name must be a C identifier: the linker (GNU ld, gold, lld) defines
/// `__start_NAME` and `__stop_NAME` only for those.
macro_rules! entry_section {
    (
        $(#[$meta:meta])*
        $vis:vis fn $bounds:ident() in $name:literal;
        $(#[$floor_meta:meta])*
        fn $floor:ident($($arg:ident: $arg_ty:ty),*) -> $ret:ty $body:block
    ) => {
        $(#[$floor_meta])*
        #[unsafe(link_section = $name)]
        #[inline(never)]
        fn $floor($($arg: $arg_ty),*) -> $ret $body

        $(#[$meta])*
        $vis fn $bounds() -> $crate::sys::section::Section {
            unsafe extern "C" {
                #[link_name = concat!("__start_", $name)]
                static START: u8;
                #[link_name = concat!("__stop_", $name)]
                static STOP: u8;
            }
            // Referenced so that `--gc-sections` keeps it, and the section with it.
            std::hint::black_box($floor as *const ());
            // Only the symbols' addresses are taken; nothing is read through them.
            $crate::sys::section::Section::new(&raw const START as usize, &raw const STOP as usize)
        }
    };
}
pub(crate) use entry_section;
