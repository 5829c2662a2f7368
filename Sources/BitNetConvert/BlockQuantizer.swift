import BitNet
/// llama.cpp block quantization for the tensors this engine writes in block
/// types: Q8_0 for `convert --embedding-type q8_0` (bitnet.cpp's `--quant-embd`
/// choice for a smaller embedding/head). Bit-exact with ggml's reference
/// quantizer (checked against gguf-py's, which is documented as such):
/// d = max|x| / 127 in f32, q = round-half-away(x · (1/d)), d stored as f16.
enum BlockQuantizer {
    static let q8_0BlockBytes = 34 // f16 d, then 32 int8

    /// Appends the Q8_0 blocks of `count` values (a multiple of 32).
    static func appendQ8_0(_ x: UnsafePointer<Float>, count: Int, to out: inout [UInt8]) {
        out.reserveCapacity(out.count + count / 32 * q8_0BlockBytes)
        var b = 0
        while b + 32 <= count {
            var amax: Float = 0
            for i in 0..<32 { amax = max(amax, abs(x[b + i])) }
            let d = amax / 127
            let id: Float = d == 0 ? 0 : 1 / d
            let h = BlockDequantizer.halfBits(d)
            out.append(UInt8(h & 0xFF))
            out.append(UInt8(h >> 8))
            for i in 0..<32 {
                let q = (x[b + i] * id).rounded(.toNearestOrAwayFromZero)
                out.append(UInt8(bitPattern: Int8(q)))
            }
            b += 32
        }
    }
}
