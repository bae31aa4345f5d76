//! Generated `taojie ipcalc` cases, one per line in the command line's own words, from a
//! fixed-seed PRNG so that a failure is the same failure on every run.

/// splitmix64: small, fixed, good enough to spread addresses.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn u128(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }
}

/// Networks where the kinds change; half the addresses are drawn inside one of them.
const V4_BASES: &[(u32, u32)] = &[
    (0x0000_0000, 8),
    (0x0a00_0000, 8),
    (0x6440_0000, 10),
    (0x7f00_0000, 8),
    (0xa9fe_0000, 16),
    (0xac10_0000, 12),
    (0xc000_0000, 24),
    (0xc000_0200, 24),
    (0xc0a8_0000, 16),
    (0xc612_0000, 15),
    (0xc633_6400, 24),
    (0xcb00_7100, 24),
    (0xe000_0000, 4),
    (0xf000_0000, 4),
    (0xffff_ff00, 24),
    (0x0000_0000, 30),
    (0xffff_fffc, 30),
];
const V6_BASES: &[(u128, u32)] = &[
    (0, 120),
    (0xffff_0000_0000, 96),
    (0x2001_0db8 << 96, 32),
    (0x3fff << 112, 20),
    (0x2001_0002 << 96, 48),
    (0x2001 << 112, 23),
    (0xfc00 << 112, 7),
    (0xfe80 << 112, 10),
    (0xfec0 << 112, 10),
    (0xff00 << 112, 8),
    (0x2000 << 112, 3),
    (0x2002 << 112, 16),
    (0x0064_ff9b << 96, 96),
    (u128::MAX << 8, 120),
];

pub fn v4_addr(rng: &mut Rng) -> u32 {
    let bits = rng.next() as u32;
    if rng.below(2) == 0 {
        return bits;
    }
    let (base, p) = V4_BASES[rng.below(V4_BASES.len() as u64) as usize];
    base | (bits & (u32::MAX >> p))
}

pub fn v6_addr(rng: &mut Rng) -> u128 {
    let bits = rng.u128();
    if rng.below(2) == 0 {
        return bits;
    }
    let (base, p) = V6_BASES[rng.below(V6_BASES.len() as u64) as usize];
    base | (bits & (u128::MAX >> p))
}

fn v4(bits: u32) -> String {
    std::net::Ipv4Addr::from(bits).to_string()
}

fn v6(bits: u128, rng: &mut Rng) -> String {
    let a = std::net::Ipv6Addr::from(bits);
    if rng.below(8) == 0 {
        a.segments().map(|g| format!("{g:04x}")).join(":") // the long form reads too
    } else {
        a.to_string()
    }
}

fn v4_mask(p: u32) -> String {
    v4(u32::MAX.checked_shl(32 - p).unwrap_or(0))
}

fn v6_mask(p: u32) -> String {
    std::net::Ipv6Addr::from(u128::MAX.checked_shl(128 - p).unwrap_or(0)).to_string()
}

/// How the generated cases divide up.
#[derive(Debug, Default)]
pub struct Counts {
    pub v4: usize,
    pub v6: usize,
    pub compare: usize,
    pub split: usize,
    pub invalid: usize,
}

/// The generated cases and how many of each kind.
pub fn generate(seed: u64) -> (Vec<String>, Counts) {
    let mut rng = Rng::new(seed);
    let mut cases = Vec::new();
    let mut n = Counts::default();
    // One address: every prefix length, every way of giving the mask.
    for p in 0..=32u32 {
        for i in 0..40 {
            let a = v4(v4_addr(&mut rng));
            cases.push(match i % 6 {
                0 => format!("{a}/{p}"),
                1 => format!("{a}/{}", v4_mask(p)),
                2 => format!("{a} --mask {}", v4_mask(p)),
                3 => format!("{a} --mask {p}"),
                4 => format!("{a} -m /{p}"),
                _ if p == 32 => a,
                _ => format!("{a}/{p} --mask {p}"),
            });
            n.v4 += 1;
        }
    }
    for p in 0..=128u32 {
        for i in 0..20 {
            let a = v6(v6_addr(&mut rng), &mut rng);
            cases.push(match i % 5 {
                0 | 1 => format!("{a}/{p}"),
                2 => format!("{a} --mask {}", v6_mask(p)),
                3 => format!("{a}/{}", v6_mask(p)),
                _ if p == 128 => a,
                _ => format!("{a} --mask /{p}"),
            });
            n.v6 += 1;
        }
    }
    // Two addresses: the second one near the first (same subnet or just outside it) or anywhere.
    for i in 0..700 {
        let p = rng.below(33) as u32;
        let a = v4_addr(&mut rng);
        let b = match i % 3 {
            0 => rng.next() as u32,
            _ => a ^ (rng.next() as u32 >> rng.below(32)),
        };
        let (a, b) = (v4(a), v4(b));
        cases.push(match i % 4 {
            0 => format!("{a}/{p} {b}"),
            1 => format!("{a} {b} --mask {}", v4_mask(p)),
            2 => format!("{a} {b}/{p}"),
            _ => format!("{a}/{p} {b}/{p} -m {p}"),
        });
        n.compare += 1;
    }
    for i in 0..500 {
        let p = rng.below(129) as u32;
        let a = v6_addr(&mut rng);
        let b = match i % 3 {
            0 => rng.u128(),
            _ => a ^ (rng.u128() >> rng.below(128)),
        };
        let (a, b) = (v6(a, &mut rng), v6(b, &mut rng));
        cases.push(match i % 3 {
            0 => format!("{a}/{p} {b}"),
            1 => format!("{a} {b} --mask {}", v6_mask(p)),
            _ => format!("{a} {b}/{p}"),
        });
        n.compare += 1;
    }
    // Splits into up to 32 subnets, in both orders, at every prefix.
    for i in 0..300 {
        let (net, p, max) = if i % 2 == 0 {
            let p = rng.below(33) as u32;
            (v4(v4_addr(&mut rng)), p, 32)
        } else {
            let p = rng.below(129) as u32;
            (v6(v6_addr(&mut rng), &mut rng), p, 128)
        };
        let new = p + rng.below(u64::from((max - p).min(5)) + 1) as u32;
        cases.push(match i % 6 {
            0 | 1 => format!("{net}/{p} --split {new}"),
            2 | 3 => format!("--split {net}/{p} {new}"),
            _ => format!("--split /{new} {net}/{p}"),
        });
        n.split += 1;
    }
    // Refusals: octets past 255, prefixes past the width, masks that are not netmasks.
    for i in 0..200 {
        let a = v4(v4_addr(&mut rng));
        cases.push(match i % 5 {
            0 => format!(
                "{}.{}.{}.{}",
                rng.below(1000),
                rng.below(256),
                256 + rng.below(700),
                rng.below(256)
            ),
            1 => format!("{a}/{}", 33 + rng.below(100)),
            2 => format!(
                "{}/{}",
                v6(v6_addr(&mut rng), &mut rng),
                129 + rng.below(100)
            ),
            3 => {
                let mask = loop {
                    let m = rng.next() as u32;
                    if m.leading_ones() + m.trailing_zeros() != 32
                        && m.leading_zeros() + m.trailing_ones() != 32
                    {
                        break m;
                    }
                };
                format!("{a} --mask {}", v4(mask))
            }
            _ => format!("{a}/{} --split {}", 8 + rng.below(8), rng.below(8)),
        });
        n.invalid += 1;
    }
    (cases, n)
}
