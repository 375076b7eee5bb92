// Compiler intrinsics Swift does not expose, for SuffixSorter's hot loops; a header only, no
// library.

// A cache prefetch hint: a load the CPU may start early without waiting on it; never faults.
static inline void datanet_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }
static inline void datanet_prefetch_write(const void *address) { __builtin_prefetch(address, 1, 3); }
