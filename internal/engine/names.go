package engine

import "strconv"

// Docker-style generated names: adjective_noun, chosen from the ID so a
// name is stable for a given container.
var (
	nameLeft = []string{
		"admiring", "brave", "calm", "clever", "dreamy", "eager", "epic", "festive", "gentle", "happy",
		"hopeful", "jolly", "keen", "loving", "lucid", "modest", "nifty", "peaceful", "quirky", "relaxed",
		"serene", "sharp", "stoic", "sweet", "tender", "upbeat", "vibrant", "wizardly", "youthful", "zealous",
	}
	nameRight = []string{
		"albattani", "babbage", "curie", "darwin", "einstein", "fermi", "galileo", "hopper", "johnson", "kepler",
		"lamport", "lovelace", "mccarthy", "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak",
		"allen", "bell", "cori", "dijkstra", "euler", "franklin", "goldberg", "hamilton", "knuth", "liskov",
	}
)

func randomName(id string) string {
	n, _ := strconv.ParseUint(id[:8], 16, 64)
	return nameLeft[n%uint64(len(nameLeft))] + "_" + nameRight[(n/uint64(len(nameLeft)))%uint64(len(nameRight))]
}
