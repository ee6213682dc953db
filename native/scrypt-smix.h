/*
 * SMix (RFC 7914 section 5) in SIMD, two scrypt lanes at once: a template, included by
 * scrypt.c once per instruction set, with these defined:
 *
 *   SFX      suffix of the functions' names
 *   VEC      the vector type: 8 words, lane 0's four in bytes 0-15, lane 1's in bytes 16-31
 *   ADD XOR SHUF(x, imm) ROTL(x, n)   32-bit add, xor, shuffle within each 4 words, rotate
 *   LOADV(pa, pb)       the VEC of the 16-byte rows pa (lane 0) and pb (lane 1)
 *   STOREV(pa, pb, x)   x's lane 0 row to pa, lane 1 row to pb
 *
 * Layout: a 64-byte block's 16 words as 4 rows of 4, row k's word m being the block's word
 * 5 * (4k + m) mod 16. Each row is then one of Salsa20's diagonals (0 5 10 15, 4 9 14 3,
 * 8 13 2 7, 12 1 6 11), so that a column round is four vector steps, and a row round the
 * same after rotating rows 1-3 by one, two and three words. The layout is kept for the
 * whole SMix (V too): xor and copy do not care about the order of words.
 */

#define SMIX_CAT_(a, b) a##_##b
#define SMIX_CAT(a, b) SMIX_CAT_(a, b)
#define SMIX_F(name) SMIX_CAT(name, SFX)

static inline __attribute__((always_inline)) void SMIX_F(salsa)(VEC *a, VEC *b, VEC *c, VEC *d) {
  VEC x0 = *a, x1 = *b, x2 = *c, x3 = *d;
  for (int i = 0; i < 8; i += 2) {
    x1 = XOR(x1, ROTL(ADD(x0, x3), 7));
    x2 = XOR(x2, ROTL(ADD(x1, x0), 9));
    x3 = XOR(x3, ROTL(ADD(x2, x1), 13));
    x0 = XOR(x0, ROTL(ADD(x3, x2), 18));
    x1 = SHUF(x1, 0x93);
    x2 = SHUF(x2, 0x4E);
    x3 = SHUF(x3, 0x39);
    x3 = XOR(x3, ROTL(ADD(x0, x1), 7));
    x2 = XOR(x2, ROTL(ADD(x3, x0), 9));
    x1 = XOR(x1, ROTL(ADD(x2, x3), 13));
    x0 = XOR(x0, ROTL(ADD(x1, x2), 18));
    x1 = SHUF(x1, 0x39);
    x2 = SHUF(x2, 0x4E);
    x3 = SHUF(x3, 0x93);
  }
  *a = ADD(*a, x0);
  *b = ADD(*b, x1);
  *c = ADD(*c, x2);
  *d = ADD(*d, x3);
}

/* out = BlockMix(in), or with xv BlockMix(in ^ va/vb) (lane 0 xors va's rows, lane 1 vb's);
 * 2r blocks of 4 VEC each; out does not overlap in. */
static inline __attribute__((always_inline)) void SMIX_F(blockmix)(const VEC *in, const __m128i *va, const __m128i *vb, VEC *out, size_t r,
                                                                   const int xv) {
#define SMIX_IN(n) (xv ? XOR(in[n], LOADV(&va[n], &vb[n])) : in[n])
  size_t last = (2 * r - 1) * 4;
  VEC x0 = SMIX_IN(last), x1 = SMIX_IN(last + 1), x2 = SMIX_IN(last + 2), x3 = SMIX_IN(last + 3);
  for (size_t i = 0; i < 2 * r; i++) {
    x0 = XOR(x0, SMIX_IN(4 * i));
    x1 = XOR(x1, SMIX_IN(4 * i + 1));
    x2 = XOR(x2, SMIX_IN(4 * i + 2));
    x3 = XOR(x3, SMIX_IN(4 * i + 3));
    SMIX_F(salsa)(&x0, &x1, &x2, &x3);
    VEC *o = out + ((i & 1) ? r + i / 2 : i / 2) * 4;
    o[0] = x0;
    o[1] = x1;
    o[2] = x2;
    o[3] = x3;
  }
#undef SMIX_IN
}

/* Where word w (0-15) of block i of lane l is in the layout. */
static inline uint8_t *SMIX_F(word)(VEC *X, size_t i, size_t l, size_t w) {
  size_t s = (13 * w) % 16; /* the row slot s holding word w: 5s = w mod 16 */
  return (uint8_t *)&X[i * 4 + s / 4] + 4 * (4 * l + s % 4);
}

/* Integerify (RFC 7914 section 5) of lane l of X, mod N: word 0 of its last block. */
static inline uint32_t SMIX_F(integerify)(VEC *X, size_t r, size_t l, uint32_t N) {
  uint32_t w;
  memcpy(&w, SMIX_F(word)(X, 2 * r - 1, l, 0), 4);
  return w & (N - 1);
}

/* SMix of two lanes, B[0] and B[1] of 128r bytes each, in place. V: 2 * N * 8r rows of 16
 * bytes, lane 0's N blocks of 128r bytes and then lane 1's (each lane's block is read
 * whole at random: apart, a read touches only that lane's cache lines); XY: 16r VEC. */
static void SMIX_F(smix)(uint8_t *const *B, size_t r, uint32_t N, __m128i *V, VEC *XY) {
  size_t per = 8 * r; /* VEC per 128r bytes of each lane; rows of 16 bytes per block of V */
  __m128i *Va = V, *Vb = V + (size_t)N * per;
  VEC *X = XY, *Y = XY + per, *T;
  for (size_t l = 0; l < 2; l++)
    for (size_t i = 0; i < 2 * r; i++)
      for (size_t w = 0; w < 16; w++) {
        uint32_t x = le32dec(B[l] + 4 * (16 * i + w));
        memcpy(SMIX_F(word)(X, i, l, w), &x, 4);
      }
  for (uint32_t i = 0; i < N; i++) {
    __m128i *va = Va + (size_t)i * per, *vb = Vb + (size_t)i * per;
    for (size_t n = 0; n < per; n++) STOREV(&va[n], &vb[n], X[n]);
    SMIX_F(blockmix)(X, NULL, NULL, Y, r, 0);
    T = X, X = Y, Y = T;
  }
  for (uint32_t i = 0; i < N; i++) {
    SMIX_F(blockmix)(X, Va + SMIX_F(integerify)(X, r, 0, N) * per, Vb + SMIX_F(integerify)(X, r, 1, N) * per, Y, r, 1);
    T = X, X = Y, Y = T;
  }
  for (size_t l = 0; l < 2; l++)
    for (size_t i = 0; i < 2 * r; i++)
      for (size_t w = 0; w < 16; w++) {
        uint32_t x;
        memcpy(&x, SMIX_F(word)(X, i, l, w), 4);
        le32enc(B[l] + 4 * (16 * i + w), x);
      }
}

#undef SMIX_F
#undef SMIX_CAT
#undef SMIX_CAT_
