import Foundation
import XCTest
@testable import BitNet
@testable import BitNetConvert

/// The streaming bound: converting a checkpoint whose largest tensor is an
/// 8 MB embedding raises the process's peak resident memory by far less than
/// 2× that tensor (the source pages are released chunk by chunk, the output
/// goes through a 1 MB buffer).
final class ConvertMemoryTests: XCTestCase {
    func testPeakMemoryStaysNearOneChunk() throws {
        // the address sanitizer's shadow memory and quarantine make resident-set figures meaningless
        if ProcessInfo.processInfo.environment["BITNET_SANITIZER"] != nil { throw XCTSkip("peak memory is not measurable under ASan") }
        // VmHWM can be reset only on Linux (clear_refs 5)
        guard (try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)) != nil else {
            throw XCTSkip("no /proc/self/clear_refs")
        }
        let hidden = 256, ffn = 768, layers = 2, vocab = 16000, heads = 4
        var tensors: [TinyCheckpoint.Tensor] = []
        var state: UInt32 = 12345
        func bf16(_ n: Int) -> [UInt8] {
            var out = [UInt16](repeating: 0, count: n)
            for i in 0..<n {
                state = state &* 1664525 &+ 1013904223
                // |x| < ~0.06, random sign
                out[i] = 0x3D00 | UInt16(state >> 25) | UInt16(state >> 16 & 0x8000)
            }
            return out.withUnsafeBytes { Array($0) }
        }
        tensors.append(.init(name: "model.embed_tokens.weight", dtype: "BF16", shape: [vocab, hidden], data: bf16(vocab * hidden)))
        tensors.append(.init(name: "model.norm.weight", dtype: "BF16", shape: [hidden], data: bf16(hidden)))
        for i in 0..<layers {
            let p = "model.layers.\(i)"
            for n in ["input_layernorm", "post_attention_layernorm", "self_attn.attn_sub_norm"] {
                tensors.append(.init(name: "\(p).\(n).weight", dtype: "BF16", shape: [hidden], data: bf16(hidden)))
            }
            tensors.append(.init(name: "\(p).mlp.ffn_sub_norm.weight", dtype: "BF16", shape: [ffn], data: bf16(ffn)))
            for (n, r, c) in [("self_attn.q_proj", hidden, hidden), ("self_attn.k_proj", hidden, hidden), ("self_attn.v_proj", hidden, hidden),
                              ("self_attn.o_proj", hidden, hidden), ("mlp.gate_proj", ffn, hidden), ("mlp.up_proj", ffn, hidden),
                              ("mlp.down_proj", hidden, ffn)] {
                tensors.append(.init(name: "\(p).\(n).weight", dtype: "BF16", shape: [r, c], data: bf16(r * c)))
            }
        }
        let folder = makeScratchFolder("mem")
        defer { removeTree(folder) }
        try TinyCheckpoint.write("\(folder)/model.safetensors", TinyCheckpoint.safetensors(tensors))
        tensors = []
        var cfg = TinyCheckpoint(family: .b158, storage: .latent(.bf16))
        cfg.hidden = hidden; cfg.ffn = ffn; cfg.layers = layers; cfg.heads = heads; cfg.kvHeads = heads; cfg.vocab = vocab
        try TinyCheckpoint.write("\(folder)/config.json", cfg.configJSON)
        try TinyCheckpoint.write("\(folder)/tokenizer.json", TinyCheckpoint.bpeTokenizerJSON)
        try "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
        guard let before = ProcessMemory.peakResidentBytes() else { throw XCTSkip("no VmHWM") }
        let converter = try HFConverter(folder: folder)
        let report = try converter.convert(to: "\(folder)/out.gguf")
        let after = try XCTUnwrap(ProcessMemory.peakResidentBytes())
        let largest = converter.plan.largestSourceBytes
        XCTAssertEqual(largest, vocab * hidden * 2)
        XCTAssertGreaterThan(report.fileBytes, largest / 2)
        // the bound is 2× the largest tensor + a constant; in practice it is well under 1×
        print("convert peak RSS growth \(after - before) bytes, largest source tensor \(largest) bytes")
        XCTAssertLessThan(after - before, largest, "peak grew by \(after - before) bytes; largest source tensor \(largest)")
    }
}
