#!/usr/bin/env python3
"""llama.cpp's own quantiser (llama_model_quantize, what `llama-quantize` runs) called through ctypes on the
libllama that node-llama-cpp ships, so Loom's GGUF quantisations can be compared with llama.cpp's on the same
weights without building llama.cpp.  No imatrix, default parameters, like `llama-quantize in.gguf out.gguf TYPE`.

usage: python3 tools/reference/llama_quantize.py <libllama.so> <in-f32.gguf> <out.gguf> <Q8_0|Q4_0|Q4_K_M|F16> [threads]
The struct below mirrors llama_model_quantize_params of the bundled llama.cpp (node-llama-cpp/llama, include/llama.h).
"""
import ctypes
import sys

FTYPE = {"F16": 1, "Q4_0": 2, "Q8_0": 7, "Q4_K_M": 15}


class Params(ctypes.Structure):
    _fields_ = [
        ("nthread", ctypes.c_int32),
        ("ftype", ctypes.c_int),
        ("output_tensor_type", ctypes.c_int),
        ("token_embedding_type", ctypes.c_int),
        ("allow_requantize", ctypes.c_bool),
        ("quantize_output_tensor", ctypes.c_bool),
        ("only_copy", ctypes.c_bool),
        ("pure", ctypes.c_bool),
        ("keep_split", ctypes.c_bool),
        ("dry_run", ctypes.c_bool),
        ("imatrix", ctypes.c_void_p),
        ("kv_overrides", ctypes.c_void_p),
        ("tt_overrides", ctypes.c_void_p),
        ("prune_layers", ctypes.c_void_p),
        ("max_buf_size", ctypes.c_size_t),
        # room in case the library's struct is longer than this header's (it is returned by value)
        ("_spare", ctypes.c_char * 64),
    ]


def main() -> int:
    lib_path, src, dst, kind = sys.argv[1:5]
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    lib = ctypes.CDLL(lib_path, mode=ctypes.RTLD_GLOBAL)
    lib.llama_backend_init()
    lib.llama_model_quantize_default_params.restype = Params
    lib.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(Params)]
    lib.llama_model_quantize.restype = ctypes.c_uint32
    p = lib.llama_model_quantize_default_params()
    p.ftype = FTYPE[kind]
    p.nthread = threads
    rc = lib.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    return int(rc)


if __name__ == "__main__":
    sys.exit(main())
