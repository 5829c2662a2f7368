#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What the machine can still give this process.
package enum SystemMemory {
    /// Linux's MemAvailable (free memory plus what the page cache can give back), or nil
    /// where /proc/meminfo does not exist or does not say.
    package static func availableBytes() -> Int? {
        guard let f = fopen("/proc/meminfo", "r") else { return nil }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), f) != nil {
            let text = String(cString: line)
            guard text.hasPrefix("MemAvailable:") else { continue }
            let digits = text.dropFirst("MemAvailable:".count).filter { $0.isNumber }
            return Int(digits).map { $0.multipliedReportingOverflow(by: 1024).overflow ? Int.max : $0 * 1024 }
        }
        return nil
    }
}
