#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What happens when a mapped model file shrinks under the running process.
///
/// The model is read through a memory map (the F16 embedding and head stay in it
/// for the whole run), so if another process truncates or rewrites the file in
/// place, the next read of a page past the new end raises SIGBUS. No check at
/// load time can prevent that, so the policy is: the CLI names the file and exits
/// with status 74 (EX_IOERR) instead of dying with "Bus error" and a core dump.
/// Replacing the file by renaming a new one over it is safe: the mapping keeps
/// the old inode.
enum BusErrorHandler {
    static let exitStatus: Int32 = 74

    /// The message, built before any signal can arrive: a handler may only make
    /// async-signal-safe calls (write, _exit), so it cannot format text itself.
    /// Leaked deliberately: a previous message may be in use by a signal that is
    /// being handled at the moment it is replaced.
    nonisolated(unsafe) private static var message: UnsafeMutableBufferPointer<UInt8>?

    /// Installs the handler (once) and names `path` in its message.
    static func install(mappedFile path: String) {
        let text = "\nbitnet: bus error (SIGBUS) reading the memory-mapped model file '\(path)': it was truncated " +
            "or overwritten while in use. Leave a model file unchanged while bitnet runs (replace it by renaming " +
            "a new file over it). Exiting.\n"
        let bytes = Array(text.utf8)
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: bytes.count)
        _ = buffer.initialize(from: bytes)
        let first = message == nil
        message = buffer
        guard first else { return }
        var action = sigaction()
        #if canImport(Glibc)
        action.__sigaction_handler.sa_handler = { _ in BusErrorHandler.handle() }
        #else
        action.__sigaction_u.__sa_handler = { _ in BusErrorHandler.handle() }
        #endif
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGBUS, &action, nil)
    }

    private static func handle() {
        if let message, let base = message.baseAddress { _ = write(2, base, message.count) }
        _exit(exitStatus)
    }
}
