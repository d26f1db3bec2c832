// An empty program: its target only builds the precompiled headers that the tests reuse (see
// recd_pch_carrier in the top-level CMakeLists.txt).
int main() { return 0; }
