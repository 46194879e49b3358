// Thin C interface over libsentencepiece (C++). Filled in by the tokenizer work.
#pragma once
#ifdef __cplusplus
extern "C" {
#endif
int csp_version(void);
#ifdef __cplusplus
}
#endif
