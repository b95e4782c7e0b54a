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
    float, float, float, float, float, float, float, float, int, int, int, int, int, int, int, int
]: ...
def dot_seq(
    a: int, b: int, n: int, ints: tuple[int, ...], floats: tuple[float, ...], seed: int, mode: int
) -> float: ...
