"""Build the optional C kernel (OpenMP). If it cannot be compiled, dtlab installs without it
and the kernels fall back to pure torch, which gives identical bits, more slowly."""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # a missing compiler must not break the install
            print(f"dtlab: C kernel not built ({exc}); using the pure-torch path")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(f"dtlab: C kernel not built ({exc}); using the pure-torch path")


setup(
    ext_modules=[
        Extension(
            "dtlab.kernels._quantize",
            [f"src/dtlab/kernels/{name}.c" for name in ("_module", "_quantize", "_metrics", "_dot", "_ggml")],
            depends=["src/dtlab/kernels/_kernel.h"],  # rebuild when the shared header changes
            extra_compile_args=["-O3", "-fopenmp", "-ffp-contract=off", "-fno-math-errno"],
            extra_link_args=["-fopenmp"],
            optional=True,
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
