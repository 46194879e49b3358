// Thin C interface over libsentencepiece (C++), so Swift can call the real library.
// Strings crossing the boundary are UTF-8 byte ranges (pointer + length); buffers returned
// through `out` parameters are malloc'ed and must be released with csp_free_buffer.
#pragma once
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

int csp_version(void);

/// Opaque handle to a loaded sentencepiece::SentencePieceProcessor.
typedef struct csp_processor csp_processor;

/// Piece types, mirroring sentencepiece's ModelProto.SentencePiece.Type.
enum {
    CSP_NORMAL = 1, CSP_UNKNOWN = 2, CSP_CONTROL = 3, CSP_USER_DEFINED = 4, CSP_UNUSED = 5, CSP_BYTE = 6
};

/// Loads a model file. On failure returns NULL and sets *error (malloc'ed, free with csp_free_buffer).
csp_processor *csp_load_file(const char *path, char **error);
/// Loads a serialized ModelProto held in memory.
csp_processor *csp_load_bytes(const void *bytes, size_t length, char **error);
void csp_free(csp_processor *p);
void csp_free_buffer(void *buffer);

/// Encodes text (no BOS/EOS, no sampling). *ids is malloc'ed. Returns 0 on success.
int csp_encode_ids(const csp_processor *p, const char *text, size_t length, int32_t **ids, size_t *count, char **error);
/// Encodes text into `out` (capacity ids) and sets *count to the number of ids, which may exceed capacity: then
/// call again with a larger buffer. Same ids as csp_encode_ids; memoises words per thread when that is exact
/// for the model (csp_word_cache_enabled). Returns 0 on success.
int csp_encode_ids_into(const csp_processor *p, const char *text, size_t length, int32_t *out, size_t capacity,
                        size_t *count, char **error);
/// 1 when csp_encode_ids_into may memoise words for this model (identity normaliser, no piece with "▁" after
/// another character), else 0.
int csp_word_cache_enabled(const csp_processor *p);
/// Encodes text to pieces: *pieces receives all pieces, each followed by a NUL byte; *bytes is the buffer size.
int csp_encode_pieces(const csp_processor *p, const char *text, size_t length, char **pieces, size_t *count,
                      size_t *bytes, char **error);
/// Decodes ids to text. *text is malloc'ed (not NUL-terminated; *length bytes).
int csp_decode_ids(const csp_processor *p, const int32_t *ids, size_t count, char **text, size_t *length, char **error);

int csp_vocab_size(const csp_processor *p);
/// The piece string of an id (malloc'ed, *length bytes). Returns 0 on success, -1 when out of range.
int csp_id_to_piece(const csp_processor *p, int id, char **piece, size_t *length);
/// The id of a piece, or the unknown id when the piece is not in the vocabulary.
int csp_piece_to_id(const csp_processor *p, const char *piece, size_t length);
float csp_score(const csp_processor *p, int id);
/// One of CSP_NORMAL ... CSP_BYTE.
int csp_piece_type(const csp_processor *p, int id);
int csp_bos_id(const csp_processor *p);
int csp_eos_id(const csp_processor *p);
int csp_pad_id(const csp_processor *p);
int csp_unk_id(const csp_processor *p);

/// The serialized ModelProto (malloc'ed).
int csp_serialized_model(const csp_processor *p, char **bytes, size_t *length);

/// The normalized text the model segments: the concatenation of the encoded pieces, with byte pieces
/// turned back into their bytes (0.1.97 has no public Normalize; exact for models without <unk> output).
int csp_normalize(const csp_processor *p, const char *text, size_t length, char **out, size_t *out_length, char **error);

/// Trains a model from a spm_train style argument string ("--input=a.txt --vocab_size=8000 ...").
/// The model is returned in memory (*model, malloc'ed, *length bytes) and no file is written.
int csp_train(const char *args, char **model, size_t *length, char **error);
/// Same, with the options as `count` key/value pairs (values may contain spaces, e.g. paths).
int csp_train_kwargs(const char *const *keys, const char *const *values, size_t count, char **model, size_t *length,
                     char **error);

#ifdef __cplusplus
}
#endif
