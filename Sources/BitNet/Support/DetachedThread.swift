#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Detached pthreads for the server's connections and the batch scheduler: both block
/// (in `recv`/`send`, on a condition), which
/// must not happen on Swift concurrency's small cooperative pool, and the library
/// does not use Foundation's `Thread`.
package enum DetachedThread {
    private final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    /// Starts `body` on a new detached thread; false when the system refuses one.
    package static func spawn(_ body: @escaping @Sendable () -> Void) -> Bool {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        // Darwin's secondary threads get 512 KiB by default; the JSON parser recurses.
        pthread_attr_setstacksize(&attributes, 4 << 20)
        #if canImport(Darwin)
        var thread: pthread_t? = nil
        let rc = pthread_create(&thread, &attributes, { raw in
            Unmanaged<Box>.fromOpaque(raw).takeRetainedValue().body()
            return nil
        }, box)
        #else
        #if canImport(Glibc)
        var thread = pthread_t()
        #else
        var thread: pthread_t? = nil  // Musl: an opaque pointer
        #endif
        let rc = pthread_create(&thread, &attributes, { raw in
            if let raw { Unmanaged<Box>.fromOpaque(raw).takeRetainedValue().body() }
            return nil
        }, box)
        #endif
        if rc != 0 {
            Unmanaged<Box>.fromOpaque(box).release()
            return false
        }
        return true
    }
}
