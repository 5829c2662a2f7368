#!/usr/bin/env python3
"""Calls the C API from Python with ctypes (no package to install):

    python3 generate.py /usr/local/lib/libBitNetCAPI.so MODEL.gguf "prompt"
"""
import ctypes
import sys


class ModelParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("threads", ctypes.c_int32), ("head_q8", ctypes.c_int32),
                ("context_length", ctypes.c_int32), ("kv_f16", ctypes.c_int32)]


CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_char_p, ctypes.c_int32, ctypes.c_void_p)


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    lib = ctypes.CDLL(sys.argv[1])
    lib.bitnet_version.restype = ctypes.c_char_p
    lib.bitnet_model_default_params.restype = ModelParams
    lib.bitnet_model_load.restype = ctypes.c_void_p
    lib.bitnet_model_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(ModelParams), ctypes.c_char_p, ctypes.c_size_t]
    lib.bitnet_context_new.restype = ctypes.c_void_p
    lib.bitnet_context_new.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.bitnet_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.c_void_p, ctypes.c_int32]
    lib.bitnet_generate.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.c_float, ctypes.c_uint64,
                                    CALLBACK, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.bitnet_context_free.argtypes = [ctypes.c_void_p]
    lib.bitnet_model_free.argtypes = [ctypes.c_void_p]

    err = ctypes.create_string_buffer(512)
    params = lib.bitnet_model_default_params()
    if params.struct_size != ctypes.sizeof(ModelParams):
        print(f"bitnet_model_params is {params.struct_size} bytes in the library, {ctypes.sizeof(ModelParams)} here")
        return 1
    params.threads = 2
    params.context_length = 256
    model = lib.bitnet_model_load(sys.argv[2].encode(), ctypes.byref(params), err, len(err))
    if not model:
        print("load failed:", err.value.decode())
        return 1
    prompt = sys.argv[3].encode()
    print(f"bitnet {lib.bitnet_version().decode()}: {lib.bitnet_tokenize(model, prompt, 1, None, 0)} prompt tokens")
    context = lib.bitnet_context_new(model, None, err, len(err))
    pieces = []

    @CALLBACK
    def on_piece(text, token, user):
        pieces.append(text)
        return 0

    n = lib.bitnet_generate(context, prompt, 24, 0.0, 1, on_piece, None, err, len(err))
    if n < 0:
        print("generate failed:", err.value.decode())
        return 1
    print(b"".join(pieces).decode("utf-8", "replace"))
    print(f"generated {n} tokens")
    lib.bitnet_context_free(context)
    lib.bitnet_model_free(model)
    return 0 if n > 0 and len(pieces) == n else 1


if __name__ == "__main__":
    sys.exit(main())
