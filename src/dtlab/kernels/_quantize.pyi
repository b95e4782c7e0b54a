# The compiled kernel (_module.c, _quantize.c, _metrics.c, _dot.c, _ggml.c). Call it only through
# dtlab.kernels.native, which checks the layout names below against its own.

ROUNDING_MODES: tuple[str, ...]
LOW_REGIONS: tuple[str, ...]
DOT_ACCUMULATIONS: tuple[str, ...]
PARAM_INT_FIELDS: tuple[str, ...]
PARAM_FLOAT_FIELDS: tuple[str, ...]
METRIC_FIELDS: tuple[str, ...]
LIMIT_FIELDS: tuple[str, ...]

def quantize(
    kind: int,
    src: int,
    dst: int,
    n: int,
    ints: tuple[int, ...],
    floats: tuple[float, ...],
    seed: int,
) -> None: ...
def set_avx2(flag: bool) -> bool: ...
def metrics(
    kind: int,
    src: int,
    n: int,
    ints: tuple[int, ...],
    floats: tuple[float, ...],
    seed: int,
    limits: tuple[float, bool, float, bool, float],
) -> tuple[
    float,  # abs_sum
    float,  # abs_max
    float,  # sq_err
    float,  # xx
    float,  # qq
    float,  # xq
    float,  # rel_sum
    float,  # rel_max
    float,  # xmax
    int,  # nan
    int,  # inf
    int,  # count
    int,  # rel_count
    int,  # nonfinite
    int,  # underflow
    int,  # subnormal
    int,  # overflow
]: ...
def dot_seq(
    a: int, b: int, n: int, ints: tuple[int, ...], floats: tuple[float, ...], seed: int, mode: int
) -> float: ...
def ggml_quantize(x: int, out: int, dm: int, n: int, kind: int, type_size: int) -> int: ...
