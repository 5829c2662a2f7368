#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The one clock for timings and deadlines: monotonic, so a wall-clock jump
/// neither expires a request nor makes a speed negative.
package enum MonotonicClock {
    /// Seconds since an arbitrary fixed point.
    package static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
