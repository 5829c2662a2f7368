// Fuzz target `hf_config`: convert's JSON parser (objects, arrays, strings with
// escapes and surrogates, numbers, nesting depth) and HFModelConfig, which reads
// config.json's dimensions, ids, dtype and quantization settings from it.
@testable import BitNet
@testable import BitNetConvert
@testable import BitNetJSON

enum Target: FuzzTarget {
    static func run(_ data: UnsafeRawBufferPointer) {
        guard let json = try? JSONValue.parse(data, path: "config.json") else { return }
        _ = try? HFModelConfig(json: json, path: "config.json")
    }

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        let configs: [(String, String)] = [
            ("bitnet-2b4t.json", """
            {"architectures":["BitNetForCausalLM"],"model_type":"bitnet","hidden_size":64,"intermediate_size":128,
             "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":300,
             "max_position_embeddings":4096,"rms_norm_eps":1e-05,"rope_theta":500000.0,"hidden_act":"relu2",
             "tie_word_embeddings":true,"bos_token_id":128000,"eos_token_id":[128001,128009],"torch_dtype":"bfloat16",
             "quantization_config":{"quant_method":"bitnet","linear_class":"autobitlinear","quantization_mode":"offline"}}
            """),
            ("llama-ternary.json", """
            {"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":32,"intermediate_size":64,
             "num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"head_dim":16,"vocab_size":259,
             "rms_norm_eps":1e-6,"hidden_act":"silu","tie_word_embeddings":false,"pad_token_id":null,
             "dtype":"float16","_name_or_path":"tiiuae/Falcon3-1B-Instruct-1.58bit",
             "quantization_config":{"quant_method":"bitnet","linear_class":"bitlinear"}}
            """),
            ("1bitllm.json", """
            {"architectures":["BitnetForCausalLM"],"model_type":"llama","hidden_size":32,"intermediate_size":86,
             "num_hidden_layers":1,"num_attention_heads":2,"vocab_size":32002,"weight_bits":1,"input_bits":8,
             "rope_scaling":null,"torch_dtype":"float16","escaped":"\\u00e9\\ud83d\\ude00\\n\\"x\\"","big":1e400,"neg":-0.0}
            """),
            ("nested.json", #"[[[{"a":[1,2,{"b":null}],"c":true,"d":false,"e":-12.5e-3}]]]"#),
        ]
        return configs.map { ($0.0, Array($0.1.utf8)) }
    }
}
