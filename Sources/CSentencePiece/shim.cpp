// C wrappers over sentencepiece::SentencePieceProcessor / SentencePieceTrainer (Debian 0.1.97).
#include "csentencepiece.h"
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

struct csp_processor {
    sentencepiece::SentencePieceProcessor sp;
};

namespace {
char *copyBytes(const std::string &s, size_t *length) {
    char *out = static_cast<char *>(std::malloc(s.size() + 1));
    if (!out) return nullptr;
    std::memcpy(out, s.data(), s.size());
    out[s.size()] = 0;
    if (length) *length = s.size();
    return out;
}

int fail(const sentencepiece::util::Status &status, char **error) {
    if (error) *error = copyBytes(status.ToString(), nullptr);
    return -1;
}

csp_processor *finishLoad(csp_processor *p, const sentencepiece::util::Status &status, char **error) {
    if (!status.ok()) {
        fail(status, error);
        delete p;
        return nullptr;
    }
    return p;
}

// Byte pieces look like <0xAB>; returns the byte or -1.
int bytePieceValue(const std::string &piece) {
    if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
    return static_cast<int>(std::strtol(piece.substr(3, 2).c_str(), nullptr, 16));
}
}  // namespace

extern "C" {

int csp_version(void) { return 2; }

csp_processor *csp_load_file(const char *path, char **error) {
    auto *p = new csp_processor();
    return finishLoad(p, p->sp.Load(path), error);
}

csp_processor *csp_load_bytes(const void *bytes, size_t length, char **error) {
    auto *p = new csp_processor();
    return finishLoad(p, p->sp.LoadFromSerializedProto(
                             absl::string_view(static_cast<const char *>(bytes), length)), error);
}

void csp_free(csp_processor *p) { delete p; }
void csp_free_buffer(void *buffer) { std::free(buffer); }

int csp_encode_ids(const csp_processor *p, const char *text, size_t length, int32_t **ids, size_t *count,
                   char **error) {
    std::vector<int> out;
    auto status = p->sp.Encode(absl::string_view(text, length), &out);
    if (!status.ok()) return fail(status, error);
    *count = out.size();
    *ids = static_cast<int32_t *>(std::malloc(sizeof(int32_t) * (out.size() ? out.size() : 1)));
    for (size_t i = 0; i < out.size(); i++) (*ids)[i] = out[i];
    return 0;
}

int csp_encode_pieces(const csp_processor *p, const char *text, size_t length, char **pieces, size_t *count,
                      size_t *bytes, char **error) {
    std::vector<std::string> out;
    auto status = p->sp.Encode(absl::string_view(text, length), &out);
    if (!status.ok()) return fail(status, error);
    std::string joined;
    for (const auto &s : out) { joined += s; joined.push_back('\0'); }
    *count = out.size();
    *pieces = copyBytes(joined, bytes);
    return 0;
}

int csp_decode_ids(const csp_processor *p, const int32_t *ids, size_t count, char **text, size_t *length,
                   char **error) {
    std::vector<int> in(ids, ids + count);
    std::string out;
    auto status = p->sp.Decode(in, &out);
    if (!status.ok()) return fail(status, error);
    *text = copyBytes(out, length);
    return 0;
}

int csp_vocab_size(const csp_processor *p) { return p->sp.GetPieceSize(); }

int csp_id_to_piece(const csp_processor *p, int id, char **piece, size_t *length) {
    if (id < 0 || id >= p->sp.GetPieceSize()) return -1;
    *piece = copyBytes(p->sp.IdToPiece(id), length);
    return 0;
}

int csp_piece_to_id(const csp_processor *p, const char *piece, size_t length) {
    return p->sp.PieceToId(absl::string_view(piece, length));
}

float csp_score(const csp_processor *p, int id) { return p->sp.GetScore(id); }

int csp_piece_type(const csp_processor *p, int id) {
    if (p->sp.IsUnknown(id)) return CSP_UNKNOWN;
    if (p->sp.IsControl(id)) return CSP_CONTROL;
    if (p->sp.IsByte(id)) return CSP_BYTE;
    if (p->sp.IsUnused(id)) return CSP_UNUSED;
    // 0.1.97 exposes no IsUserDefined. User-defined pieces always carry score +0.0, whereas normal
    // pieces have negative unigram log-probabilities or BPE ranks -0, -1, -2 ... (note: -0.0).
    float s = p->sp.GetScore(id);
    if (s == 0.0f && !std::signbit(s)) return CSP_USER_DEFINED;
    return CSP_NORMAL;
}

int csp_bos_id(const csp_processor *p) { return p->sp.bos_id(); }
int csp_eos_id(const csp_processor *p) { return p->sp.eos_id(); }
int csp_pad_id(const csp_processor *p) { return p->sp.pad_id(); }
int csp_unk_id(const csp_processor *p) { return p->sp.unk_id(); }

int csp_serialized_model(const csp_processor *p, char **bytes, size_t *length) {
    *bytes = copyBytes(p->sp.serialized_model_proto(), length);
    return 0;
}

int csp_normalize(const csp_processor *p, const char *text, size_t length, char **out, size_t *out_length,
                  char **error) {
    std::vector<int> ids;
    auto status = p->sp.Encode(absl::string_view(text, length), &ids);
    if (!status.ok()) return fail(status, error);
    std::string joined;
    for (int id : ids) {
        const std::string &piece = p->sp.IdToPiece(id);
        int byte = p->sp.IsByte(id) ? bytePieceValue(piece) : -1;
        if (byte >= 0) joined.push_back(static_cast<char>(byte));
        else joined += piece;
    }
    *out = copyBytes(joined, out_length);
    return 0;
}

int csp_train(const char *args, char **model, size_t *length, char **error) {
    std::string serialized;
    auto status = sentencepiece::SentencePieceTrainer::Train(absl::string_view(args), nullptr, &serialized);
    if (!status.ok()) return fail(status, error);
    *model = copyBytes(serialized, length);
    return 0;
}

int csp_train_kwargs(const char *const *keys, const char *const *values, size_t count, char **model, size_t *length,
                     char **error) {
    std::unordered_map<std::string, std::string> kwargs;
    for (size_t i = 0; i < count; i++) kwargs[keys[i]] = values[i];
    std::string serialized;
    auto status = sentencepiece::SentencePieceTrainer::Train(kwargs, nullptr, &serialized);
    if (!status.ok()) return fail(status, error);
    *model = copyBytes(serialized, length);
    return 0;
}

}  // extern "C"
