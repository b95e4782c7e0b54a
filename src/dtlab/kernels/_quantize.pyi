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
