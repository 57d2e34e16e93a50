-- error: 2:20: '}' expected near ';'
type R = {a: number; b: string}
