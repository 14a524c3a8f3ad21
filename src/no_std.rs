//! What std would provide to the default wasm build, which is `no_std`: the global allocator (the
//! `dlmalloc` std itself uses on wasm32) and the panic handler.

/// The allocator std uses on wasm32.
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// A panic traps at once, as std's `panic = "abort"` would, without formatting a message no one
/// could read (a wasm32-unknown-unknown program has no stderr): the trap reaches JS as a
/// `RuntimeError: unreachable`.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
