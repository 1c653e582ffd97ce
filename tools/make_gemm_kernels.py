"""Write engine/gemm_kernels.py, the register-tiled uint64 matmul kernels (see engine/gemm.py).

    python tools/make_gemm_kernels.py
"""

from pathlib import Path

from secptune.engine.gemm import kernel_source

if __name__ == "__main__":
    path = Path(__file__).resolve().parent.parent / "engine" / "gemm_kernels.py"
    path.write_text(kernel_source())
    print(f"wrote {path}")
