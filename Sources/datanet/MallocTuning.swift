import Glibc

/// Sync moves messages of up to 32 MiB, a fresh buffer each. glibc maps each such buffer on
/// its own and unmaps it when freed, so every message faults its pages in afresh: a fifth of a
/// 1 GiB clone's time (measured, BENCHMARKS.md). Past these settings they come from the heap
/// and are reused, and up to 256 MiB freed at its top is kept for the next ones. `mallopt` is
/// looked up at run time: the Glibc module leaves malloc.h out. A libc without it is left as is.
func keepLargeBuffersInTheHeap() {
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(nil, "mallopt") else { return }
    let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
    let mmapThreshold: Int32 = -3, trimThreshold: Int32 = -1 // M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    _ = mallopt(mmapThreshold, 64 << 20) // past the largest message (an answer's 32 MiB and its framing)
    _ = mallopt(trimThreshold, 256 << 20)
}
