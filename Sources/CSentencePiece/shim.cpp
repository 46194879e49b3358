// C wrappers over sentencepiece::SentencePieceProcessor / SentencePieceTrainer (Debian 0.1.97).
#include "csentencepiece.h"
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <mutex>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

// Memoised words of one processor: an open-addressing table of word hashes; word bytes and ids live in two
// arenas (a node-based std::unordered_map spent more time than the encoding).
struct WordCache {
    struct Slot {
        uint64_t hash = 0;          // 0 = empty
        uint32_t word = 0, ids = 0; // offsets into the arenas
        uint16_t wordLength = 0, idCount = 0;
        bool first = false;         // the text's first chunk (no leading space) is its own key
    };
    std::vector<Slot> slots = std::vector<Slot>(1 << 8);
    size_t used = 0;
    std::string words;
    std::vector<int> ids;

    void clear() {
        std::fill(slots.begin(), slots.end(), Slot());
        used = 0;
        words.clear();
        ids.clear();
    }

    static uint64_t hashOf(const char *p, size_t n, bool first) {
        uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull) ^ (first ? 0x5555 : 0);
        for (; n >= 8; p += 8, n -= 8) {
            uint64_t w;
            std::memcpy(&w, p, 8);
            h = (h ^ w) * 0xc6a4a7935bd1e995ull;
            h ^= h >> 29;
        }
        uint64_t tail = 0;
        std::memcpy(&tail, p, n);
        h = (h ^ tail) * 0xc6a4a7935bd1e995ull;
        h ^= h >> 32;
        return h | 1;  // never 0
    }

    // The slot holding the word, or the empty slot where it belongs.
    Slot &find(const char *p, size_t n, bool first, uint64_t h) {
        size_t mask = slots.size() - 1;
        for (size_t i = h & mask;; i = (i + 1) & mask) {
            Slot &s = slots[i];
            if (s.hash == 0) return s;
            if (s.hash == h && s.wordLength == n && s.first == first && std::memcmp(words.data() + s.word, p, n) == 0) return s;
        }
    }

    void grow() {
        std::vector<Slot> old(slots.size() * 2);
        old.swap(slots);
        size_t mask = slots.size() - 1;
        for (const Slot &s : old) {
            if (s.hash == 0) continue;
            size_t i = s.hash & mask;
            while (slots[i].hash != 0) i = (i + 1) & mask;
            slots[i] = s;
        }
    }
};

// Shared by the threads encoding with one processor (each word is encoded once), in shards with their own
// lock so two threads rarely wait for each other.
struct SharedWordCache {
    struct Shard {
        std::mutex lock;
        WordCache table;
    };
    static constexpr size_t shardCount = 64;
    Shard shards[shardCount];
};

struct csp_processor {
    sentencepiece::SentencePieceProcessor sp;
    // Word memoisation (see csp_encode_ids_into): allowed only when encoding provably splits at word starts.
    bool wordCache = false;
    bool dummyPrefix = false;
    mutable SharedWordCache words;
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

// ---- Word memoisation ------------------------------------------------------------------------------------
//
// Debian's 0.1.97 builds a protobuf SentencePieceText for every Encode call, which makes it about half as fast
// as the pip wheel. Text repeats words, so we cache the ids of each word, still computed by the library.
// This is exact when every cut we make is one the library would make anyway: we cut raw text before a space
// that follows a non-space, i.e. before "▁" following a non-"▁" in the normalised text. If no vocabulary
// piece contains a non-"▁" character followed by "▁" (every piece matches ▁*[^▁]*), no piece can cross such
// a cut, so BPE's merges decompose at it. The normaliser must map each character on
// its own (identity rule: no precompiled charsmap, no whitespace removal, whitespace escaped as prefix).

// Minimal protobuf wire-format reading: the few ModelProto fields the decision needs.
bool readVarint(const uint8_t *&p, const uint8_t *end, uint64_t &v) {
    v = 0;
    for (int shift = 0; p < end && shift < 64; shift += 7) {
        uint8_t c = *p++;
        v |= uint64_t(c & 0x7f) << shift;
        if (c < 0x80) return true;
    }
    return false;
}

// Calls visit(field, wireType, varint, bytes, length) for each field of a message; false on malformed input.
template <typename F> bool forEachField(const uint8_t *p, const uint8_t *end, F visit) {
    while (p < end) {
        uint64_t key, v = 0;
        if (!readVarint(p, end, key)) return false;
        int field = int(key >> 3), wire = int(key & 7);
        const uint8_t *bytes = nullptr;
        size_t length = 0;
        if (wire == 0) { if (!readVarint(p, end, v)) return false; }
        else if (wire == 1) { if (end - p < 8) return false; p += 8; }
        else if (wire == 5) { if (end - p < 4) return false; p += 4; }
        else if (wire == 2) {
            if (!readVarint(p, end, v) || uint64_t(end - p) < v) return false;
            bytes = p; length = size_t(v); p += v;
        } else return false;
        visit(field, wire, v, bytes, length);
    }
    return true;
}

void decideWordCache(csp_processor *p) {
    const std::string proto = p->sp.serialized_model_proto();
    const uint8_t *b = reinterpret_cast<const uint8_t *>(proto.data());
    // Defaults from sentencepiece_model.proto.
    uint64_t modelType = 1, suffix = 0, dummy = 1, removeExtra = 1, escape = 1;
    bool charsmap = false, ok = true;
    ok &= forEachField(b, b + proto.size(), [&](int f, int w, uint64_t, const uint8_t *bytes, size_t n) {
        if (w != 2) return;
        if (f == 2) {  // trainer_spec
            ok &= forEachField(bytes, bytes + n, [&](int g, int gw, uint64_t v, const uint8_t *, size_t) {
                if (gw == 0 && g == 3) modelType = v;
                if (gw == 0 && g == 24) suffix = v;
            });
        } else if (f == 3) {  // normalizer_spec
            ok &= forEachField(bytes, bytes + n, [&](int g, int gw, uint64_t v, const uint8_t *, size_t m) {
                if (gw == 2 && g == 2) charsmap = m > 0;
                if (gw == 0 && g == 3) dummy = v;
                if (gw == 0 && g == 4) removeExtra = v;
                if (gw == 0 && g == 5) escape = v;
            });
        }
    });
    // BPE only: unigram's Viterbi breaks exact ties ("Y"+"YYY" vs "YYY"+"Y") by float rounding of the
    // running path score, which depends on the text before the word, so a word's ids can depend on context.
    // BPE merges are chosen by rank, leftmost first, within the word alone.
    if (!ok || modelType != 2 || suffix || charsmap || removeExtra || !escape) return;
    static const std::string ws = "\xe2\x96\x81";  // ▁
    if (p->sp.PieceToId(ws) == p->sp.unk_id()) return;  // a lone ▁ must be a known piece
    for (int id = 0; id < p->sp.GetPieceSize(); id++) {
        const std::string &piece = p->sp.IdToPiece(id);
        size_t i = 0;
        while (piece.compare(i, 3, ws) == 0) i += 3;
        if (piece.find(ws, i) != std::string::npos) return;
    }
    p->wordCache = true;
    p->dummyPrefix = dummy != 0;
}

csp_processor *finishLoad(csp_processor *p, const sentencepiece::util::Status &status, char **error) {
    if (!status.ok()) {
        fail(status, error);
        delete p;
        return nullptr;
    }
    decideWordCache(p);
    return p;
}


constexpr size_t cachedWordBytes = 64;        // longer chunks (code, URLs) are encoded but not remembered
constexpr size_t maxCachedWords = 1 << 13;    // per shard (512k in all); then the shard starts over
thread_local std::vector<int> scratch;

bool isWordStart(const char *t, size_t i) {
    if (i == 0 || t[i] != ' ' || t[i - 1] == ' ') return false;
    // A literal "▁" in the input normalises to the same symbol as a space: no cut after it.
    return !(i >= 3 && uint8_t(t[i - 3]) == 0xe2 && uint8_t(t[i - 2]) == 0x96 && uint8_t(t[i - 1]) == 0x81);
}

// Encodes one chunk (starting at a cut) with the library, as it would be encoded inside the whole text.
sentencepiece::util::Status encodeChunk(const csp_processor *p, absl::string_view chunk, bool first,
                                        std::vector<int> *ids) {
    // With a dummy prefix the library adds the "▁" that the chunk's leading space stands for.
    if (p->dummyPrefix && !first) chunk.remove_prefix(1);
    ids->clear();
    return p->sp.Encode(chunk, ids);
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

int csp_encode_ids_into(const csp_processor *p, const char *text, size_t length, int32_t *out, size_t capacity,
                        size_t *count, char **error) {
    size_t n = 0;
    auto emit = [&](const int *ids, size_t k) {
        for (size_t j = 0; j < k; j++, n++) if (n < capacity) out[n] = ids[j];
    };
    if (!p->wordCache) {
        scratch.clear();
        auto status = p->sp.Encode(absl::string_view(text, length), &scratch);
        if (!status.ok()) return fail(status, error);
        emit(scratch.data(), scratch.size());
        *count = n;
        return 0;
    }
    size_t start = 0;
    while (start < length) {
        size_t end = start + 1;
        while (end < length && !isWordStart(text, end)) end++;
        // With a dummy prefix, a chunk that is only a trailing space would vanish once its space is removed.
        if (p->dummyPrefix && end < length) {
            size_t next = end + 1;
            while (next < length && !isWordStart(text, next)) next++;
            bool onlySpaces = true;
            for (size_t j = end; j < next && onlySpaces; j++) onlySpaces = text[j] == ' ';
            if (onlySpaces && next == length) end = length;
        }
        absl::string_view chunk(text + start, end - start);
        const bool first = start == 0;
        if (chunk.size() > cachedWordBytes) {
            auto status = encodeChunk(p, chunk, first, &scratch);
            if (!status.ok()) return fail(status, error);
            emit(scratch.data(), scratch.size());
        } else {
            // The first chunk has no leading space: its encoding can differ, so it is its own key.
            const uint64_t h = WordCache::hashOf(chunk.data(), chunk.size(), first);
            auto &shard = p->words.shards[(h >> 40) % SharedWordCache::shardCount];
            std::unique_lock<std::mutex> held(shard.lock);
            WordCache &cache = shard.table;
            WordCache::Slot *slot = &cache.find(chunk.data(), chunk.size(), first, h);
            if (slot->hash == 0) {
                // Encode without the lock; another thread may insert the same word meanwhile.
                held.unlock();
                auto status = encodeChunk(p, chunk, first, &scratch);
                if (!status.ok()) return fail(status, error);
                held.lock();
                if (cache.used >= maxCachedWords) cache.clear();
                if (2 * (cache.used + 1) > cache.slots.size()) cache.grow();
                slot = &cache.find(chunk.data(), chunk.size(), first, h);
                if (slot->hash == 0) {
                    slot->hash = h;
                    slot->first = first;
                    slot->word = uint32_t(cache.words.size());
                    slot->wordLength = uint16_t(chunk.size());
                    slot->ids = uint32_t(cache.ids.size());
                    slot->idCount = uint16_t(scratch.size());
                    cache.words.append(chunk.data(), chunk.size());
                    cache.ids.insert(cache.ids.end(), scratch.begin(), scratch.end());
                    cache.used++;
                }
            }
            emit(cache.ids.data() + slot->ids, slot->idCount);
        }
        start = end;
    }
    *count = n;
    return 0;
}

int csp_word_cache_enabled(const csp_processor *p) { return p->wordCache ? 1 : 0; }

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

float csp_score(const csp_processor *p, int id) {
    if (id < 0 || id >= p->sp.GetPieceSize()) return 0.0f;   // protobuf CHECK-fails (aborts) out of range
    return p->sp.GetScore(id);
}

int csp_piece_type(const csp_processor *p, int id) {
    if (id < 0 || id >= p->sp.GetPieceSize()) return CSP_UNUSED;   // out of range: not a piece (tools/fuzz)
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
