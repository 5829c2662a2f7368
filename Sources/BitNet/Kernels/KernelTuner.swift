#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Picks the fastest decode kernel (I2_S, TL1, TL2) per matrix shape by
/// timing them on this machine with the model's own weights and thread pool,
/// and remembers the answer per CPU, ISA, thread count and shape in a small
/// text file (`$BITNET_CACHE_DIR`, else `$XDG_CACHE_HOME/bitnet`, else
/// `~/.cache/bitnet`), so later loads cost nothing. A lookup-table kernel is
/// chosen only when it beats I2_S by at least 5%: equal speed is not worth
/// the second copy of the weights it needs.
public struct KernelTuner {
    public struct Choice: Sendable {
        public let rows: Int
        public let cols: Int
        public let kernel: MatrixKernel
        /// Median seconds per call, when measured now (empty when cached).
        public let timings: [MatrixKernel: Double]
        public var shape: String { "\(rows)x\(cols)" }
    }

    let kernels: Kernels
    let pool: WorkerPool
    /// Read and update the cache file (off: measure every shape now).
    public var useCache = true

    public init(kernels: Kernels, pool: WorkerPool) {
        self.kernels = kernels
        self.pool = pool
    }

    /// Chooses per shape and switches every matrix to its shape's kernel.
    @discardableResult
    public func apply(to matrices: [TernaryMatrix]) throws -> [Choice] {
        var groups: [String: [TernaryMatrix]] = [:]
        var order: [String] = []
        for m in matrices {
            let key = "\(m.rows)x\(m.cols)"
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(m)
        }
        var cache = useCache ? Self.readCache() : [:]
        var choices: [Choice] = []
        var jobs: [(TernaryMatrix, MatrixKernel)] = []
        for key in order {
            let group = groups[key]!
            let cacheKey = "\(Self.machineKey)|\(kernels.isa)|t\(pool.threads)|\(key)"
            var choice: Choice
            if let cached = cache[cacheKey], let kernel = MatrixKernel(rawValue: cached) {
                choice = Choice(rows: group[0].rows, cols: group[0].cols, kernel: kernel, timings: [:])
            } else {
                choice = try measure(group)
                cache[cacheKey] = choice.kernel.rawValue
            }
            jobs += group.map { ($0, choice.kernel) }
            choices.append(choice)
        }
        try TernaryMatrix.useForDecoding(jobs, pool: pool)
        if useCache { Self.writeCache(cache) }
        return choices
    }

    /// The cached decode kernel for one shape on this machine, if `bitnet tune` or an
    /// `--kernel auto` load measured it before.
    public static func cachedChoice(rows: Int, cols: Int, isa: ISA, threads: Int) -> MatrixKernel? {
        readCache()["\(machineKey)|\(isa)|t\(threads)|\(rows)x\(cols)"].flatMap(MatrixKernel.init(rawValue:))
    }

    /// Stores measured choices in the cache file (what `bitnet tune` does after measuring).
    public func remember(_ choices: [Choice]) {
        var cache = Self.readCache()
        for c in choices { cache["\(Self.machineKey)|\(kernels.isa)|t\(pool.threads)|\(c.shape)"] = c.kernel.rawValue }
        Self.writeCache(cache)
    }

    /// Times each kernel on up to 8 matrices of one shape, cycled so that most
    /// calls read weights the previous calls did not just bring into cache.
    private func measure(_ group: [TernaryMatrix]) throws -> Choice {
        let sample = Array(group.prefix(8))
        let cols = sample[0].cols
        let acts = try QuantizedActivations(capacity: 1, cols: cols)
        var rng = SeededGenerator(seed: 1)
        let x = (0..<cols).map { _ in rng.nextSigned() }
        try x.withUnsafeBufferPointer { try kernels.quantize($0, rows: 1, cols: cols, into: acts) }
        var y = [Float](repeating: 0, count: sample[0].rows)
        var timings: [MatrixKernel: Double] = [:]
        for kernel in MatrixKernel.allCases {
            try TernaryMatrix.useForDecoding(sample.map { ($0, kernel) }, pool: pool)
            try y.withUnsafeMutableBufferPointer { out in
                for m in sample { try kernels.matmul(m, acts, into: out, pool: pool) } // warm-up
                var samples: [Double] = []
                for _ in 0..<4 {
                    let start = Generator.now()
                    for m in sample { try kernels.matmul(m, acts, into: out, pool: pool) }
                    samples.append((Generator.now() - start) / Double(sample.count))
                }
                timings[kernel] = samples.sorted()[samples.count / 2]
            }
        }
        let i2s = timings[.i2s] ?? .infinity
        var best = MatrixKernel.i2s
        for kernel in [MatrixKernel.tl1, .tl2] where (timings[kernel] ?? .infinity) < 0.95 * min(i2s, timings[best] ?? .infinity) {
            best = kernel
        }
        // leave the sample on the winner: apply(to:) then repacks only the other matrices
        try TernaryMatrix.useForDecoding(sample.map { ($0, best) }, pool: pool)
        return Choice(rows: sample[0].rows, cols: cols, kernel: best, timings: timings)
    }

    // MARK: - Cache file

    /// The CPU's brand string (ISA.report's first line).
    static var machineKey: String {
        let line = ISA.report.split(separator: "\n").first { $0.hasPrefix("cpu: ") }
        return line.map { String($0.dropFirst(5)).replacingSpaces() } ?? "unknown-cpu"
    }

    public static var cachePath: String? {
        func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } }
        if let dir = env("BITNET_CACHE_DIR") { return dir + "/tune-v1.txt" }
        if let dir = env("XDG_CACHE_HOME") { return dir + "/bitnet/tune-v1.txt" }
        if let home = env("HOME") { return home + "/.cache/bitnet/tune-v1.txt" }
        return nil
    }

    static func readCache() -> [String: String] {
        guard let path = cachePath, let f = fopen(path, "r") else { return [:] }
        defer { fclose(f) }
        var out: [String: String] = [:]
        var line: UnsafeMutablePointer<CChar>?
        var cap = 0
        while getline(&line, &cap, f) > 0, let l = line {
            let parts = String(cString: l).split(separator: " ")
            if parts.count == 2 { out[String(parts[0])] = parts[1].trimmingNewline() }
        }
        free(line)
        return out
    }

    static func writeCache(_ entries: [String: String]) {
        guard let path = cachePath, let slash = path.lastIndex(of: "/") else { return }
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path[..<slash].split(separator: "/") {
            prefix += part
            mkdir(prefix, 0o755) // exists already: fine
            prefix += "/"
        }
        let temp = path + ".tmp.\(getpid())"
        guard let f = fopen(temp, "w") else { return } // a cache that cannot be written is only slower
        for (key, value) in entries.sorted(by: { $0.key < $1.key }) { fputs("\(key) \(value)\n", f) }
        fclose(f)
        rename(temp, path)
    }
}

private extension String {
    func replacingSpaces() -> String { String(map { $0 == " " || $0 == "|" ? "_" : $0 }) }
}

private extension Substring {
    func trimmingNewline() -> String { String(self.filter { $0 != "\n" && $0 != "\r" }) }
}
