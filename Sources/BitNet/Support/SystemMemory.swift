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

    /// The transparent huge page size (2 MiB on x86-64), or nil where a buffer cannot
    /// ask for huge pages: not Linux, THP compiled out, or set to "never".
    package static let hugePageSize: Int? = {
        #if os(Linux)
        guard let mode = firstLine("/sys/kernel/mm/transparent_hugepage/enabled"), !mode.contains("[never]"),
              let text = firstLine("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size"),
              let size = Int(text.filter { $0.isNumber }), size > 0, size & (size - 1) == 0 else { return nil }
        return size
        #else
        return nil
        #endif
    }()

    private static func firstLine(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 256)
        return fgets(&line, Int32(line.count), f) == nil ? nil : String(cString: line)
    }
}
