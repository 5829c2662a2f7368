import Foundation
import BitNet
import BitNetJSON

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A scalar in the CLI's one-line JSON reports (bench, logits, tokenize --json), written with
/// BitNetJSON's string escaping; numbers as %.6g so report lines stay short.
enum ReportValue {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)

    var text: String {
        switch self {
        case .string(let s): return JSONWriter.quoted(s)
        case .int(let v): return String(v)
        case .double(let v): return v.isFinite ? String(format: "%.6g", v) : "null"
        case .bool(let v): return v ? "true" : "false"
        }
    }
}

/// One JSON object per line, keys in the given order.
func jsonLine(_ pairs: [(String, ReportValue)]) -> String {
    "{" + pairs.map { "\(ReportValue.string($0.0).text): \($0.1.text)" }.joined(separator: ", ") + "}"
}


/// Prints `bitnet bench kernels` results as a table or as JSON lines.
struct BenchReport {
    let json: Bool
    private var printedHeader = false
    private var highlights: [String] = []

    init(json: Bool) { self.json = json }

    func header(_ text: String) {
        if !json { print(text) }
    }

    func ceiling(threads: Int, readGBps: Double, int8Gops: Double, dispatchMicros: Double, isa: ISA) {
        if json {
            print(jsonLine([("kernel", .string("read_bandwidth")), ("threads", .int(threads)), ("gbps", .double(readGBps))]))
            print(jsonLine([("kernel", .string("int8_peak")), ("threads", .int(threads)), ("gops", .double(int8Gops)),
                            ("isa", .string(isa.description))]))
            print(jsonLine([("kernel", .string("pool_dispatch")), ("threads", .int(threads)),
                            ("us", .double(dispatchMicros))]))
        } else {
            print("ceilings, \(threads) thread(s): " +
                  String(format: "read %.1f GB/s (1 GiB stream), int8 peak %.0f GOP/s", readGBps, int8Gops) +
                  " (\(isa)), " + String(format: "pool dispatch %.2f µs (%.0f µs per 200-call decode step)",
                                         dispatchMicros, dispatchMicros * 200))
        }
    }

    mutating func row(i2s: Measurement, blas: Measurement, scalar: Measurement?,
                      ceiling: (gbps: Double, gops: Double), isa: ISA) {
        let vsBLAS = blas.stats.median / i2s.stats.median
        let vsScalar = scalar.map { $0.stats.median / i2s.stats.median }
        let bwFraction = i2s.weightGBps / ceiling.gbps
        let peakFraction = i2s.gops / ceiling.gops
        if json {
            for (index, m) in [i2s, blas, scalar].compactMap({ $0 }).enumerated() {
                var pairs: [(String, ReportValue)] = [
                    ("kernel", .string(m.kernel)), ("op", .string(m.op)), ("m", .int(m.m)), ("k", .int(m.k)),
                    ("n", .int(m.n)), ("threads", .int(m.threads)), ("median_s", .double(m.stats.median)),
                    ("weight_gbps", .double(m.weightGBps)), ("min_s", .double(m.stats.min)), ("gops", .double(m.gops)),
                    ("cached", .bool(m.cached)), ("samples", .int(m.stats.count)),
                ]
                if index == 0 {
                    pairs += [("isa", .string(isa.description)), ("vs_openblas", .double(vsBLAS)),
                              ("read_bw_fraction", .double(bwFraction)), ("int8_peak_fraction", .double(peakFraction))]
                    if let vsScalar { pairs.append(("vs_scalar", .double(vsScalar))) }
                }
                if m.estimated { pairs.append(("estimated_from_rows", .int(2))) }
                print(jsonLine(pairs))
            }
            return
        }
        if !printedHeader {
            printedHeader = true
            print("")
            print("kernel        op    M×K          N    thr cache   median ms    min ms     GB/s    GOP/s   ×BLAS  ×scalar  %readBW  %int8peak")
        }
        func line(_ m: Measurement, _ extra: String) {
            print(pad(m.kernel, 13) + " " + pad(m.op, 5) + " " + pad("\(m.m)×\(m.k)", 12) + " " +
                  pad(String(m.n), 4, right: true) + " " + pad(String(m.threads), 4, right: true) + " " +
                  pad(m.cached ? "L2/L3" : "DRAM", 5) +
                  String(format: " %10.4f %9.4f %8.1f %8.1f", m.stats.median * 1e3, m.stats.min * 1e3, m.weightGBps, m.gops) +
                  extra)
        }
        let scalarText = vsScalar.map { String(format: "%8.1f", $0) } ?? "       -"
        line(i2s, String(format: " %7.1f", vsBLAS) + scalarText +
             (i2s.n == 1 ? String(format: " %7.0f%%", bwFraction * 100) : "         ") +
             (i2s.n > 1 ? String(format: " %9.0f%%", peakFraction * 100) : ""))
        line(blas, "")
        if let scalar { line(scalar, scalar.estimated ? "  (timed on 2 rows, scaled)" : "") }
        if !i2s.cached {
            let ceilingText = i2s.n == 1 ? String(format: "%.0f%% of read bandwidth", bwFraction * 100)
                                         : String(format: "%.0f%% of int8 peak", peakFraction * 100)
            highlights.append("\(i2s.kernel) \(i2s.op) \(i2s.m)×\(i2s.k) N=\(i2s.n) \(i2s.threads)T: " +
                              String(format: "%.1f× OpenBLAS, ", vsBLAS) + ceilingText)
        }
    }

    /// A TL1/TL2 row: same shape, threads and working set as the I2_S row
    /// just printed, with its speed relative to that row (×I2_S > 1: faster).
    mutating func tlRow(_ tl: Measurement, i2s: Measurement, ceiling: (gbps: Double, gops: Double), isa: ISA) {
        let vsI2S = i2s.stats.median / tl.stats.median
        let bwFraction = tl.weightGBps / ceiling.gbps
        if json {
            print(jsonLine([
                ("kernel", .string(tl.kernel)), ("op", .string(tl.op)), ("m", .int(tl.m)), ("k", .int(tl.k)),
                ("n", .int(tl.n)), ("threads", .int(tl.threads)), ("median_s", .double(tl.stats.median)),
                ("weight_gbps", .double(tl.weightGBps)), ("min_s", .double(tl.stats.min)), ("gops", .double(tl.gops)),
                ("cached", .bool(tl.cached)), ("samples", .int(tl.stats.count)), ("isa", .string(isa.description)),
                ("vs_i2s", .double(vsI2S)), ("weight_bytes_vs_i2s", .double(Double(tl.weightBytes) / Double(i2s.weightBytes))),
                ("read_bw_fraction", .double(bwFraction)),
            ]))
            return
        }
        print(pad(tl.kernel, 13) + " " + pad(tl.op, 5) + " " + pad("\(tl.m)×\(tl.k)", 12) + " " +
              pad(String(tl.n), 4, right: true) + " " + pad(String(tl.threads), 4, right: true) + " " +
              pad(tl.cached ? "L2/L3" : "DRAM", 5) +
              String(format: " %10.4f %9.4f %8.1f %8.1f", tl.stats.median * 1e3, tl.stats.min * 1e3, tl.weightGBps, tl.gops) +
              String(format: "   %.2f× I2_S", vsI2S) +
              (tl.n == 1 ? String(format: ", %.0f%% readBW", bwFraction * 100) : ""))
        if !tl.cached {
            highlights.append("\(tl.kernel) \(tl.op) \(tl.m)×\(tl.k) N=\(tl.n) \(tl.threads)T: " +
                              String(format: "%.2f× I2_S", vsI2S) +
                              (tl.n == 1 ? String(format: ", %.0f%% of read bandwidth", bwFraction * 100) : ""))
        }
    }

    private func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - s.count))
        return right ? fill + s : s + fill
    }

    func footer() {
        guard !json, !highlights.isEmpty else { return }
        print("\nout-of-cache summary:")
        for h in highlights { print("  " + h) }
    }
}
