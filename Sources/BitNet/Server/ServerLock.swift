#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A pthread mutex with one condition variable. The library avoids Foundation,
/// and `Synchronization.Mutex` needs macOS 15, so the server's few shared
/// counters are guarded by this.
final class ServerLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits for a ``broadcast()``; call with the lock held (inside ``withLock(_:)``).
    func wait() {
        pthread_cond_wait(condition, mutex)
    }

    /// Waits for a ``broadcast()`` or until `seconds` have passed; call with the lock held.
    func wait(seconds: Double) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let total = Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9 + max(0, seconds)
        var deadline = timespec()
        deadline.tv_sec = time_t(total.rounded(.down))
        deadline.tv_nsec = Int((total - total.rounded(.down)) * 1e9)
        pthread_cond_timedwait(condition, mutex, &deadline)
    }

    func broadcast() {
        pthread_cond_broadcast(condition)
    }
}
