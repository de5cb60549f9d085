// A parent target that does not link weft keeps the parent's settings (tests/install/subdir).
#if __cplusplus != 201703L
#error "the parent's C++17 target was built with another standard"
#endif
#ifdef NDEBUG
#error "NDEBUG is defined in a parent project configured without a build type"
#endif
int parent_only() { return 0; }
