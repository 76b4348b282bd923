"""Finding what the user states about themselves in one turn: their name, work, home, the people and pets
they care about, the things they love.

`find_facts` reads one user turn (a Whisper transcript: capitalised and punctuated) and finds only what is
stated plainly about the speaker: questions, negations, wishes, reported speech and other people's lives
state nothing, since a wrong fact told back to the user is worse than one never learned. Each value is written
to read after its kind ("a nurse", "in Lisbon", "a cat named Miso"); `think.user_profile` keeps them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

MAX_VALUE_WORDS = 6


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.casefold().split())


_LETTERS = r"[^\W\d_]+"
_NAME_WORD = rf"({_LETTERS}(?:-{_LETTERS})?)"  # Theo, Zoë, Jean-Luc ("Ana's" gives Ana)
_FILLERS = {"so", "and", "but", "well", "oh", "okay", "ok", "hey", "hi", "hello", "um", "uh", "er", "yeah", "yes",
            "no", "actually", "anyway", "also", "now", "then", "by", "the", "way", "right", "good", "morning",
            "evening", "afternoon"}
_LEADING_FILLERS = _FILLERS - {"the", "way", "by", "right", "good", "morning", "evening", "afternoon"}
# a clause opening with one of these asks or bids rather than tells ("Do you know my name?")
_OPENERS = {"do", "does", "did", "what", "what's", "whats", "who", "who's", "where", "where's", "when", "why", "how",
            "how's", "which", "whose", "can", "could", "would", "will", "shall", "should", "is", "are", "am", "was",
            "were", "have", "has", "had", "may", "might", "remember", "don't", "doesn't", "didn't", "isn't",
            "aren't", "wasn't", "won't", "can't", "tell", "guess", "say", "if", "whether", "imagine", "pretend",
            "suppose", "let's"}
# a word before the statement in its clause that makes it not the speaker's plain present fact
_HEDGES = {"not", "never", "don't", "doesn't", "didn't", "won't", "wouldn't", "can't", "cannot", "couldn't",
           "isn't", "wasn't", "aren't", "if", "wish", "imagine", "pretend", "pretending", "suppose", "maybe",
           "perhaps", "someday", "hope", "hoping", "want", "wanted", "says", "said", "say", "thinks", "think",
           "thought", "told", "tells", "tell", "saying", "asked", "asks", "used", "would", "could", "should",
           "might", "when", "whenever", "whether", "unless", "before", "until", "once", "dream", "dreamed", "dreamt",
           "like", "as", "she", "he", "they", "she's", "he's", "they're", "friend", "friend's", "ago"}
_NOT_NAMES = _word_set(
    "Good Fine Okay OK Ok Alright Sorry Tired Here There Back Just Not Happy Sure Really Very So Still Going Doing "
    "Trying Thinking Feeling Glad Done Home Sad Bored Lonely Hungry Great Excited Nervous Scared Afraid Busy Free "
    "Ready Sick Well Better Worse Awake Alive Right Wrong Listening Also Always Never Now Only Actually Honestly "
    "Kind Pretty Quite Totally Called Named Cool Late Early Almost About Gonna Having Getting Looking Working Living "
    "Sitting Walking Sleepy Confused Curious Interested Worried Upset Angry Stressed Exhausted Lost Stuck Someone "
    "Somebody Nobody Everyone Nothing Something Me Myself Him Her Them Us You Your It That This What Who How Out Off "
    "Up Down Over In On At From With And But Or No Yes Yeah Hi Hello Hey Thanks Thank The A An My Our Secret "
    "Important Long Hard Weird Funny Strange Different Same Spelled Pronounced Short Is Was Like Um Uh Too Married "
    "Single Retired Vegan Vegetarian Samantha God Christmas Easter Monday Tuesday Wednesday Thursday Friday "
    "Saturday Sunday January February March April May June July August September October November December "
    "English British American Canadian Australian Irish Scottish Welsh French German Italian Spanish Portuguese "
    "Dutch Swedish Norwegian Danish Finnish Polish Russian Ukrainian Greek Turkish Chinese Japanese Korean Indian "
    "Pakistani Mexican Brazilian Argentinian Chilean Colombian Peruvian Kenyan Nigerian Ghanaian Egyptian "
    "Moroccan Israeli Iranian Lebanese Syrian Filipino Vietnamese Thai Indonesian Swiss Austrian Belgian Czech "
    "Hungarian Romanian European African Asian Latino Latina Hispanic Jewish Muslim Christian Catholic Protestant "
    "Buddhist Hindu Sikh Atheist Mormon Black White Gay Straight Trans Deaf Blind Autistic"
)
_OCCUPATIONS = _word_set(
    "nurse doctor teacher engineer developer programmer coder designer artist writer author journalist editor "
    "lawyer attorney solicitor accountant architect chef cook baker butcher barista waiter waitress bartender "
    "cashier clerk librarian scientist researcher professor lecturer tutor student pharmacist dentist vet "
    "veterinarian therapist psychologist psychiatrist counselor counsellor worker paramedic firefighter officer "
    "soldier pilot driver mechanic electrician plumber carpenter builder farmer gardener musician singer dancer "
    "actor actress photographer filmmaker painter sculptor nanny carer caregiver midwife surgeon physician "
    "paediatrician pediatrician consultant manager director analyst administrator assistant receptionist "
    "secretary salesman saleswoman salesperson entrepreneur freelancer translator interpreter technician "
    "economist banker broker trader cleaner janitor housekeeper tailor hairdresser barber florist fisherman "
    "miner welder courier postman postwoman sailor coach trainer instructor principal headteacher priest pastor "
    "minister rabbi imam chaplain judge paralegal intern apprentice biologist chemist physicist mathematician "
    "historian archaeologist geologist astronomer nutritionist dietitian optician optometrist physiotherapist "
    "radiographer radiologist guard ranger zookeeper shopkeeper volunteer founder housewife homemaker retiree "
    "pensioner composer illustrator animator poet novelist blogger comedian programmer scholar surveyor "
    "inspector detective pharmacologist nun monk vicar")
_NOT_JOB_MODIFIERS = {"good", "great", "bad", "terrible", "awful", "better", "best", "excellent", "amazing", "decent",
                      "lousy", "huge", "big", "total", "real", "born", "natural", "wannabe", "former", "ex", "failed",
                      "frustrated", "would-be", "aspiring", "future", "fellow", "hopeless", "horrible", "fine",
                      "hard", "fast", "slow", "quick", "heavy", "light", "careful", "safe", "backseat", "home",
                      "amateur", "hobby", "keen", "avid", "bit", "little", "kind", "sort", "sunday", "weekend",
                      "secret", "closet", "budding", "self-taught", "struggling", "wonderful", "proud"}
PETS = {"dog": "dogs", "puppy": "puppies", "cat": "cats", "kitten": "kittens", "rabbit": "rabbits",
         "bunny": "bunnies", "hamster": "hamsters", "guinea pig": "guinea pigs", "parrot": "parrots",
         "budgie": "budgies", "bird": "birds", "horse": "horses", "pony": "ponies", "goldfish": "goldfish",
         "fish": "fish", "turtle": "turtles", "tortoise": "tortoises", "snake": "snakes", "lizard": "lizards",
         "gecko": "geckos", "ferret": "ferrets", "rat": "rats", "mouse": "mice", "chicken": "chickens",
         "hen": "hens", "goat": "goats", "pig": "pigs"}
PEOPLE = {"mother": "mothers", "mom": "moms", "mum": "mums", "father": "fathers", "dad": "dads",
           "sister": "sisters", "brother": "brothers", "son": "sons", "daughter": "daughters", "wife": "wives",
           "husband": "husbands", "partner": "partners", "boyfriend": "boyfriends", "girlfriend": "girlfriends",
           "fiance": "fiances", "fiancé": "fiancés", "fiancee": "fiancees", "fiancée": "fiancées",
           "grandmother": "grandmothers", "grandma": "grandmas", "granny": "grannies", "grandfather": "grandfathers",
           "grandpa": "grandpas", "grandad": "grandads", "granddad": "granddads", "grandson": "grandsons",
           "granddaughter": "granddaughters", "aunt": "aunts", "auntie": "aunties", "uncle": "uncles",
           "cousin": "cousins", "niece": "nieces", "nephew": "nephews", "friend": "friends", "child": "children",
           "kid": "kids", "stepmother": "stepmothers", "stepfather": "stepfathers", "stepson": "stepsons",
           "stepdaughter": "stepdaughters", "stepmom": "stepmoms", "stepdad": "stepdads", "grandchild": "grandchildren",
           "grandkid": "grandkids", "twin": "twins"}
_PEOPLE_MODIFIERS = r"(?:(?:little|big|older|younger|baby|twin|best|eldest|oldest|youngest|teenage|grown-up|grown)\s+)?"
_PET_MODIFIERS = r"(?:(?:little|old|new|sweet|pet|big|small|black|white|ginger|tabby|rescue|lovely)\s+)*"
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
# pets said to be got or adopted without a name: "I got a chicken" may be dinner, "I got a puppy" is not
_SURELY_PETS = {"dog", "dogs", "puppy", "puppies", "cat", "cats", "kitten", "kittens", "hamster", "hamsters",
                "guinea pig", "guinea pigs", "bunny", "bunnies", "budgie", "budgies", "parrot", "parrots", "ferret",
                "ferrets", "gecko", "geckos", "tortoise", "tortoises", "pony", "ponies"}
# people named in an aside after a pet ("I have a cat, a neighbour called Jo, …"): the name is not the pet's
_NOT_PET_ASIDES = _word_set("neighbour neighbor guy man woman girl boy lady bloke person colleague coworker co-worker "
                            "roommate flatmate housemate lodger landlord landlady baby")
# words before "here" that are not a name: "Cold here.", "Stop here.", "It's Summer here.", "Mum here." (at the
# start of a sentence, a capital says nothing)
_NOT_NAMES_BEFORE_HERE = _word_set(
    "Cold Hot Warm Chilly Freezing Boiling Quiet Noisy Loud Nice Lovely Beautiful Gorgeous Sunny Rainy Raining "
    "Snowing Cloudy Windy Foggy Humid Dark Bright Calm Peaceful Crazy Chaos Madness Mayhem Night Midnight Noon "
    "Lunchtime Bedtime Teatime Dinnertime Lunch Dinner Breakfast Coffee Tea Spring Summer Autumn Fall Winter "
    "Ramadan Diwali Hanukkah Eid Thanksgiving Halloween Ditto Agreed Nope Yep Yup Nah Present Everything "
    "Anything Everybody Anybody Somewhere Anywhere Nowhere Everywhere Stop Wait Start Sign Click Look Come Park "
    "Turn Stay Sit Stand Go Leave Meet Begin Pause Continue Listen Hold Keep Move Help Tap Press End Finish Read "
    "Write Pull Push Drop Put Get Eat Sleep Rest Land Walk Run Jump Swim Hide Live Work Play Focus Breathe Relax "
    "Pay Shop Order Enter Exit Stopping Waiting Starting Parked Sitting Standing Staying")
# "I play cello", "I play the guitar", "I play football": an instrument, a sport or a game
_PLAYED = ("piano", "guitar", "bass", "cello", "violin", "viola", "double bass", "flute", "clarinet", "oboe", "bassoon",
           "saxophone", "sax", "trumpet", "trombone", "tuba", "french horn", "horn", "harp", "ukulele", "banjo",
           "mandolin", "accordion", "harmonica", "drums", "keyboard", "keys", "organ", "recorder", "bass guitar",
           "electric guitar", "acoustic guitar", "football", "soccer", "basketball", "baseball", "softball", "tennis",
           "table tennis", "ping pong", "golf", "cricket", "rugby", "hockey", "ice hockey", "volleyball", "badminton",
           "squash", "netball", "lacrosse", "handball", "darts", "pool", "snooker", "billiards", "bowls", "chess",
           "bridge", "poker", "cards", "video games", "board games", "computer games", "card games")
# "I run a bakery", "I own a shop", "I teach maths": told as "Mei runs a bakery"
_ENSEMBLES = ("orchestra", "band", "choir", "quartet", "trio", "ensemble", "group", "jazz band", "church")
WORK_VERBS = {"run": "runs", "own": "owns", "manage": "manages", "teach": "teaches"}
# what one runs, owns or manages as work ("I run a marathon", "I own a car" are no work)
_BUSINESSES = ("business", "company", "firm", "shop", "store", "bakery", "cafe", "café", "restaurant", "bar", "pub",
               "bistro", "deli", "diner", "salon", "studio", "gallery", "bookshop", "bookstore", "boutique", "florist",
               "garage", "workshop", "farm", "vineyard", "winery", "brewery", "hotel", "hostel", "guesthouse",
               "clinic", "practice", "pharmacy", "nursery", "daycare", "school", "agency", "consultancy", "startup",
               "start-up", "charity", "team", "department", "kitchen", "stall", "website", "podcast", "channel",
               "newsletter", "gym", "kennels", "cattery", "stables")
_NOT_BUSINESS_MODIFIERS = {"hobby", "pretend", "fake", "toy", "imaginary", "virtual", "fantasy", "dream", "lemonade"}
_POSSESSIVES = {"my", "our", "your", "his", "her", "their", "its"}


def _alternation(words: Iterable[str]) -> str:
    """A regex alternation of `words`, longest first ("bass guitar" before "bass")."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


_PET_WORD = _alternation([*PETS, *PETS.values()])
_PERSON_WORD = _alternation([*PEOPLE, *PEOPLE.values()])
_COUNT = r"(?P<count>a|an|one|two|three|four|five|six)"
_I_HAVE = r"\bI(?:\s+have|'ve\s+got|\s+have\s+got|\s+own)\s+"
_I_AM = r"\bI(?:'m|\s+am)\s+"

_AMOUNT = (r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a\s+few|a\s+couple(?:\s+of)?|"
           r"few|several|many|some)")
_SPAN = (r"(?:minutes?|hours?|days?|nights?|mornings?|afternoons?|evenings?|weeks?|weekends?|months?|years?|"
         r"decades?|ages|while)")
_PERIOD = r"(?:week|weekend|month|year|morning|afternoon|evening|summer|spring|autumn|fall|winter|time)"
# when something happened: "yesterday", "last week", "this morning", "two days ago"
_WHEN_DONE = (rf"yesterday|today|recently|earlier|last|the\s+other\s+day|this\s+{_PERIOD}|"
              rf"(?:{_AMOUNT}\s+)?{_SPAN}\s+(?:ago|back)")
# a time said after a value: "now", "last year", "about three months ago", "for ten years", "since March"
_WHEN = (rf"{_WHEN_DONE}|now|anymore|lately|currently|nowadays|tonight|tomorrow|again|ago|since|every|originally|"
         rf"these\s+days|at\s+the\s+moment|right\s+now|back\s+(?:in|then)|next\s+{_PERIOD}|in\s+\d+|"
         rf"(?:once|twice|{_AMOUNT}\s+(?:times|{_SPAN}))\s+(?:a|an|per|each)\s+(?:day|{_PERIOD})|"
         rf"(?:about|around|almost|nearly|roughly|over|under|just|only|more\s+than|less\s+than)\s+{_AMOUNT}\s+{_SPAN}|"
         rf"for\s+(?:(?:about|around|almost|nearly|over|just)\s+)?(?:{_AMOUNT}|years|months|the\s+last|the\s+past)")
# what may follow "I have a cat": its name, or the end of the phrase ("a cat allergy" is no cat)
_NAMED = (r"(?![\w-])(?:\s+(?i:named|called)\s+(?P<name>[^\W\d_]+(?:-[^\W\d_]+)?))?"
          r"(?=\s*$|\s+(?i:and|who|that|which|too|now|at|in|as|with|but|so|because|whom|here|there|back|"
          rf"{_WHEN_DONE})\b)")
# where a value ends: a joining word, or a time said after it ("in Lisbon now", "a nurse for ten years")
_VALUE_END = re.compile(
    r"\s+(?:and|but|or|so|because|cause|though|although|while|who|which|that|where|when|whom|if|until|unless|as|"
    r"like|with|whose|too|also|actually|really|a\s+lot|very\s+much|so\s+much|more\s+than|the\s+most|"
    rf"{_WHEN})\b.*$", re.I)
_PREPOSITIONS = {"at", "in", "on", "for", "with", "from", "to", "of", "by", "near", "about", "into", "during",
                 "after", "before", "around", "outside"}
_DANGLING = {"a", "an", "the", "of", "at", "in", "on", "for", "to", "with", "my", "and", "or", "his", "her",
             "their", "our", "your", "from", "by", "near"}
_PRONOUNS = {"you", "your", "yours", "yourself", "it", "it's", "its", "that", "this", "these", "those", "them",
             "him", "her", "me", "us", "myself", "here", "there"}
_VAGUE_LIKES = {"my", "our", "how", "what", "when", "where", "why", "who", "which", "whatever", "everything",
                "anything", "nothing", "something", "everyone", "everybody", "anyone", "nobody", "one", "ones",
                "much", "so", "too", "very", "about", "lots", "talking", "chatting", "listening", "thinking", "being",
                "idea", "way", "sound", "fact", "thought", "feeling", "thing", "things", "stuff"}
_VAGUE_VERBS_AFTER_TO = {"think", "know", "say", "believe", "hear", "talk", "chat", "see", "imagine", "hope",
                         "keep", "be", "have", "get", "go", "do", "make", "tell", "ask"}
_NOT_WORKPLACES = {"night", "nights", "weekend", "weekends", "morning", "mornings", "evening", "evenings",
                   "afternoon", "afternoons", "day", "days", "weekdays", "shift", "shifts", "least", "all", "times",
                   "hours", "it", "myself", "my", "a living", "risk", "stake", "danger", "jeopardy", "trouble",
                   "limbo", "question", "progress", "silence", "bursts", "peace", "monday", "mondays", "tuesday",
                   "tuesdays", "wednesday", "wednesdays", "thursday", "thursdays", "friday", "fridays",
                   "saturday", "saturdays", "sunday", "sundays", "home"} | _PRONOUNS


def _words(text: str) -> list[str]:
    return [w.strip(".,!?;:\"'").casefold() for w in text.split() if w.strip(".,!?;:\"'")]


def _clean(raw: str) -> str:
    """A value as kept: up to where the phrase ends, at most MAX_VALUE_WORDS words, no dangling words, and
    nothing of "my" or "our" (told back as "Mei loves cooking for my family", it would be wrong)."""
    words = _VALUE_END.sub("", " " + raw.strip()).split()
    words = words[: next((i for i, w in enumerate(words) if w.casefold() in {"my", "our"}), len(words))]
    if len(words) > MAX_VALUE_WORDS:
        cut_mid_phrase = words[MAX_VALUE_WORDS].casefold() not in _PREPOSITIONS
        words = words[:MAX_VALUE_WORDS]
        last = max((i for i, w in enumerate(words) if i and w.casefold() in _PREPOSITIONS), default=0)
        if cut_mid_phrase and last:  # "cooking Italian food for my whole…": up to "for", not into its phrase
            words = words[:last]
    while words and words[-1].casefold() in _DANGLING:
        words.pop()
    return " ".join(words).strip(" .,!?;:'\"-–—")


def _is_proper(word: str) -> bool:
    return len(word) >= 2 and word[0].isupper() and not word.isupper()


def _has_proper_noun(text: str) -> bool:
    """ "Lisbon", "the UK": a place named, not "the moment" or "fear"."""
    return any(w[0].isupper() and w != "I" for w in text.split())


def _given_name(word: str, *, capital_required: bool) -> str | None:
    if word.casefold() in _NOT_NAMES or len(word) < 2 or (capital_required and not _is_proper(word)):
        return None
    return word[0].upper() + word[1:]


def _with_article(noun: str) -> str:
    return f"an {noun}" if noun[0].casefold() in "aeiou" else f"a {noun}"


# each finder: what one match states, or None when it turns out to state nothing
_Finder = Callable[[re.Match[str]], str | None]


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    value: _Finder
    lead_only: bool = False  # only greetings and fillers may come before it in its clause ("Hi, I'm Theo")


def _explicit_name(m: re.Match[str]) -> str | None:
    return _given_name(m.group(1), capital_required=False)


def _capitalised_name(m: re.Match[str]) -> str | None:
    return _given_name(m.group(1), capital_required=True)


def _introduced_name(m: re.Match[str]) -> str | None:
    """ "I'm Theo" is a name only when the clause ends there or goes on as introductions do."""
    rest = m.string[m.end():].strip()
    if rest and not re.match(r"(?i)(?:and|from|by\s+the\s+way|here|speaking|too|btw)\b", rest):
        return None
    return _capitalised_name(m)


def _name_here(m: re.Match[str]) -> str | None:
    """ "Rahul here", "it's Rahul here": a name, not "Cold here", "Mum here" or "It's Christmas Eve here"."""
    word = m.group(1).casefold()
    if word in _NOT_NAMES_BEFORE_HERE or word in PEOPLE or word in PETS or word in _OCCUPATIONS:
        return None
    if re.search(r"(?i)\bit(?:'s|\s+is)\b", m.string[: m.start()]):
        return None
    return _capitalised_name(m)


def _work_as(m: re.Match[str]) -> str | None:
    value = _clean(m.group(1))
    return value if len(value.split()) >= 2 else None


def _work_place(m: re.Match[str]) -> str | None:
    place = _clean(m.group(2))
    words = _words(place)
    if not words or words[0] in _NOT_WORKPLACES or " ".join(words[:2]) in _NOT_WORKPLACES:
        return None
    if any(w in _PRONOUNS for w in words):
        return None
    return f"{m.group(1).casefold()} {place}"


def _occupation(m: re.Match[str]) -> str | None:
    """ "I'm a nurse at the children's hospital": the job word within the first four, no judgement before it."""
    value = _clean(m.group(1))
    words = value.split()
    for i, word in enumerate(words[1:5], start=1):
        if word.casefold() in _NOT_JOB_MODIFIERS:
            return None
        if word.casefold().removesuffix("'s") in _OCCUPATIONS:
            rest = words[i + 1:]
            if rest and rest[0].casefold() not in {"at", "in", "for", "with", "on"}:
                rest = []
            return _clean(" ".join(words[: i + 1] + rest))
    return None


def _home(m: re.Match[str]) -> str | None:
    place = _clean(re.sub(r"\s+(?:for|to)\s.*$", "", m.group(2)))  # "moved to Lisbon for a job / to be near Mum"
    if any(w in _PRONOUNS for w in _words(place)):
        return None
    if not _has_proper_noun(place):  # "on a narrowboat on the canal" is a home worth knowing, "in a flat" not
        dwelling = re.match(rf"(?:a|an)\s+(?:\w+\s+)?({'|'.join(_DWELLINGS)})\b", place, re.I)
        if not dwelling:
            return None
        place = place[: dwelling.end()]
    preposition = m.group(1).casefold().split()[0]  # "outside of" is kept as "outside"
    return f"{'in' if preposition == 'to' else preposition} {place}"


_DWELLINGS = ("narrowboat", "houseboat", "boat", "barge", "yacht", "sailboat", "campervan", "camper", "van", "caravan",
              "motorhome", "farm", "ranch", "island", "lighthouse", "treehouse", "cabin", "castle", "commune")


def _from(m: re.Match[str]) -> str | None:
    place = _clean(m.group(1))
    return f"from {place}" if _has_proper_noun(place) else None


def _business(m: re.Match[str]) -> str | None:
    """ "I run a little bakery down by the harbour" gives "run a little bakery"; "I run a shop assistant course"
    nothing: the business must end its phrase. A place after it is kept when it is named ("in Porto")."""
    modifiers = m.group("mod").split()
    if any(w.casefold() in _NOT_BUSINESS_MODIFIERS for w in modifiers):
        return None
    tail = _VALUE_END.sub("", m.group("rest")).split()
    if tail and tail[0].casefold() not in _PREPOSITIONS - {"of"} | {"down", "up", "out", "over", "just", "here"}:
        return None  # "a shop assistant", "a bar of soap"
    place = tail if tail and tail[0].casefold() in {"in", "on", "at", "near"} else []
    if not _has_proper_noun(" ".join(place[1:])):  # "in Porto", not "on weekends"
        place = []
    article = m.group("det").casefold()
    phrase = " ".join([*modifiers, m.group("noun")])
    if article not in {"the", "a", "an"}:  # "my own business", "our family farm"
        article = _with_article(phrase).split()[0]
    return _clean(" ".join([m.group("verb").casefold(), article, phrase, *place]))


def _teaching(m: re.Match[str]) -> str | None:
    """ "I teach maths at a secondary school"; not "I teach myself", and no "my" kept ("at my old school")."""
    words = _clean(m.group(1)).split()
    own = next((i for i, w in enumerate(words) if w.casefold() in _POSSESSIVES | _PRONOUNS), len(words))
    taught = _clean(" ".join(words[:own]))
    first = _words(taught)[:1]
    if not first or first[0] in _VAGUE_LIKES:
        return None
    return f"teach {taught}"


def _playing(m: re.Match[str]) -> str | None:
    """ "I play cello in a community orchestra" gives "playing cello in a community orchestra"."""
    return f"playing {m.group(1)}{m.group(2) or ''}"


def _likes(m: re.Match[str]) -> str | None:
    value = _clean(m.group(1))
    words = _words(value)
    if not words or words[0] in _VAGUE_LIKES or any(w in _PRONOUNS for w in words):
        return None
    if words[0] == "to" and (len(words) < 2 or words[1] in _VAGUE_VERBS_AFTER_TO):
        return None
    return value


def _favourite(m: re.Match[str]) -> str | None:
    thing = " ".join(_words(m.group(1)))
    value = _clean(m.group(2))
    words = _words(value)
    if not thing or not words or words[0] in _VAGUE_LIKES or any(w in _PRONOUNS for w in words):
        return None
    return f"favourite {thing} is {value}"


def _named_pet(m: re.Match[str]) -> str | None:
    name = _given_name(m.group(2), capital_required=True)
    return f"{_with_article(m.group(1).casefold())} named {name}" if name else None


def _counted(nouns: dict[str, str]) -> _Finder:
    """ "I have a cat named Miso", "I've got two kids": the count must agree with the noun."""
    plurals = {v: k for k, v in nouns.items()}

    def value(m: re.Match[str]) -> str | None:
        count, noun, name = m.group("count").casefold(), m.group("noun").casefold(), m.group("name")
        modifier = (m.group("mod") or "").casefold()
        singular = _NUMBERS[count] == 1
        if singular != (noun in nouns) and not (noun in plurals and noun in nouns):  # "fish" is both
            return None
        phrase = f"{modifier}{noun}"
        head = _with_article(phrase) if count in {"a", "an"} else f"{count} {phrase}"
        if name is None:
            return None if noun in {"friend", "friends", "cousin", "cousins"} else head
        given = _given_name(name, capital_required=True)
        return f"{head} named {given}" if given and singular else None

    return value


_counted_pet = _counted(PETS)


def _got_pet(m: re.Match[str]) -> str | None:
    """ "We got a kitten named Miso", "I just adopted a puppy"; "I got a chicken" only with a name."""
    if m.group("name") is None and m.group("noun").casefold() not in _SURELY_PETS:
        return None
    return _counted_pet(m)


def _named_person(m: re.Match[str]) -> str | None:
    name = _given_name(m.group(3), capital_required=True)
    modifier = (m.group(1) or "").casefold()
    relation = m.group(2).casefold()
    if not name or relation not in PEOPLE:
        return None
    return f"{_with_article(modifier + relation)} named {name}"


def _married(m: re.Match[str]) -> str | None:
    if m.group(1) is None:
        return "married"
    name = _given_name(m.group(1), capital_required=True)
    return f"married to {name}" if name else None


def _rule(kind: str, pattern: str, value: _Finder, *, lead_only: bool = False) -> _Rule:
    return _Rule(kind, re.compile(pattern), value, lead_only)


_RULES = (
    _rule("name", rf"\b(?i:my\s+name\s+is|(?:my|the)\s+name's|i'm\s+called|i\s+am\s+called)\s+"
                  rf"(?i:actually\s+|really\s+)?{_NAME_WORD}", _explicit_name),
    _rule("name", rf"\b(?i:call\s+me)\s+{_NAME_WORD}", _capitalised_name),
    _rule("name", rf"(?:{_I_AM}|\b(?i:this\s+is)\s+){_NAME_WORD}", _introduced_name, lead_only=True),
    _rule("name", rf"(?:\b(?i:it's|it\s+is)\s+)?\b{_NAME_WORD}\s+(?i:here)$", _name_here, lead_only=True),
    _rule("work", r"\bI(?:\s+(?:currently\s+|still\s+|now\s+)?work|'m\s+working|\s+am\s+working)\s+as\s+"
                  r"((?:a|an)\s+[^,]+)", _work_as),
    _rule("work", r"\bI(?:\s+(?:currently\s+|still\s+|now\s+)?work|'m\s+working|\s+am\s+working)\s+"
                  r"(at|in|for|with)\s+([^,]+)", _work_place),
    _rule("work", r"\b(?i:my\s+job\s+is)\s+(at|in|with)\s+([^,]+)", _work_place),
    _rule("work", rf"(?:{_I_AM}|\b(?i:my\s+job\s+is)\s+(?:being\s+)?)((?:a|an)\s+[^,]+)", _occupation),
    _rule("work", rf"{_I_AM}(?:now\s+|happily\s+)?(retired)\b", lambda m: "retired"),
    _rule("work", rf"\bI\s+(?:currently\s+|still\s+|now\s+|also\s+)?(?P<verb>run|own|manage)\s+"
                  rf"(?P<det>an?|the|(?:my|our)(?:\s+own)?)\s+(?P<mod>(?:[^\W\d_]+(?:-[^\W\d_]+)?\s+){{0,3}}?)"
                  rf"(?P<noun>{_alternation(_BUSINESSES)})(?![\w'-])(?P<rest>[^,]*)", _business),
    _rule("work", r"\bI\s+(?:currently\s+|still\s+|now\s+|also\s+)?teach\s+([^,]+)", _teaching),
    _rule("home", r"\b(?:I|We)(?:\s+(?:currently\s+|still\s+|now\s+)?live|'m\s+living|\s+am\s+living|'ve\s+lived|"
                  r"'ve\s+been\s+living|'m\s+based|\s+am\s+based)\s+(in|near|on|outside(?:\s+of)?)\s+([^,]+)", _home),
    _rule("home", r"\bI\s+(?:just\s+|recently\s+|have\s+just\s+)?(?:moved|'ve\s+moved|have\s+moved)\s+(to)\s+"
                  r"([^,]+)", _home),
    _rule("home", r"\b(?i:my\s+home\s+is)\s+(in|near)\s+([^,]+)", _home),
    _rule("home", rf"(?:{_I_AM}(?:originally\s+)?from|\bI\s+come\s+from)\s+([^,]+)", _from),
    _rule("pet", rf"\b(?i:my)\s+{_PET_MODIFIERS}({_PET_WORD})(?:'s\s+name\s+is|\s+is\s+called|\s+is\s+named|"
                 rf"'s\s+called|\s+named|\s+called)?\s+{_NAME_WORD}", _named_pet),
    _rule("pet", rf"{_I_HAVE}{_COUNT}\s+(?P<mod>{_PET_MODIFIERS})(?P<noun>{_PET_WORD}){_NAMED}", _counted_pet),
    _rule("pet", rf"\b(?:I|We)(?:'ve|\s+have)?\s+(?:just\s+|recently\s+|finally\s+)?(?:got|gotten|adopted|rescued)\s+"
                 rf"{_COUNT}\s+(?P<mod>{_PET_MODIFIERS})(?P<noun>{_PET_WORD}){_NAMED}", _got_pet),
    _rule("family", rf"\b(?i:my)\s+({_PEOPLE_MODIFIERS})({_PERSON_WORD})(?:'s\s+name\s+is|\s+is\s+called|"
                    rf"\s+is\s+named|'s\s+called|\s+named|\s+called)?\s+{_NAME_WORD}", _named_person),
    _rule("family", rf"{_I_HAVE}{_COUNT}\s+(?P<mod>{_PEOPLE_MODIFIERS})(?P<noun>{_PERSON_WORD}){_NAMED}",
          _counted(PEOPLE)),
    _rule("family", rf"{_I_AM}(?:happily\s+)?married\b(?:\s+to\s+{_NAME_WORD})?", _married),
    _rule("likes", r"\bI\s+(?:really\s+|absolutely\s+|just\s+|truly\s+|totally\s+)?(?:love|adore|enjoy|like)\s+"
                   r"([^,]+)", _likes),
    _rule("likes", rf"\bI\s+(?:also\s+|still\s+|mostly\s+|often\s+|sometimes\s+|regularly\s+)?play\s+"
                   rf"((?:the\s+)?(?i:{_alternation(_PLAYED)}))(?![\w'-])"
                   rf"(\s+(?:in|with)\s+(?:a|an|the)\s+(?:\w+\s+)?(?:{'|'.join(_ENSEMBLES)})(?![\w'-]))?", _playing),
    _rule("likes", rf"{_I_AM}(?:really\s+|also\s+)?(?:into|(?:a\s+)?(?:big\s+|huge\s+)?fan\s+of)\s+([^,]+)",
          _likes),
    _rule("likes", r"\b(?i:my)\s+(?:absolute\s+|all-time\s+|all\s+time\s+)?(?i:favou?rite)\s+([\w ]{2,30}?)"
                   r"(?:\s+is|'s)\s+([^,]+)", _favourite),
)


# a pet's name told in an aside: "a puppy, a little beagle called Biscuit" (one pet: "two dogs, a poodle called
# Max" names only one of them)
_PET_ASIDE = re.compile(rf"\b({_alternation(PETS)}),\s+(?:a|an)\s+((?:{_LETTERS}(?:-{_LETTERS})?\s+){{1,3}}?)"
                        r"(?=(?:named|called)\s)")


def _pet_aside(m: re.Match[str]) -> str:
    """ "a puppy, a little beagle called Biscuit" reads "a puppy called Biscuit"; "a cat, a neighbour called Jo"
    is left as it is."""
    if any(w in PEOPLE or w in _OCCUPATIONS or w in _NOT_PET_ASIDES for w in _words(m.group(2))):
        return m.group(0)
    return f"{m.group(1)} "


def _statement_clauses(text: str) -> Iterator[str]:
    """The clauses of `text` that tell rather than ask: split at sentence ends and commas; the last clause of
    a question, and a clause opening like a question ("do you know…", "what do I…"), are left out."""
    text = text.replace("’", "'").replace("‘", "'")
    text = _PET_ASIDE.sub(_pet_aside, text)
    for sentence in re.findall(r"[^.!?…]+[.!?…]*", text):
        question = sentence.rstrip().endswith("?")
        clauses = [c.strip() for c in re.split(r"[,;:()\"“”]|\s[-–—]+\s|[–—]", sentence.rstrip(" .!?…"))]
        clauses = [c for c in clauses if c]
        for i, clause in enumerate(clauses):
            words = _words(clause)
            while words and words[0] in _LEADING_FILLERS:
                words.pop(0)
            if (question and i == len(clauses) - 1) or (words and words[0] in _OPENERS):
                continue
            yield clause


def _told_plainly(before: str, *, lead_only: bool) -> bool:
    """Whether what comes before a statement in its clause leaves it the speaker's plain present fact."""
    words = _words(before)
    if any(w in _HEDGES for w in words):
        return False
    if lead_only:  # "Hi Samantha, I'm Theo", "Oh, this is Theo" (greetings and names only)
        raw_words = [w.strip(".,!?;:\"'") for w in before.split()]
        return all(w.casefold() in _FILLERS or _is_proper(w) for w in raw_words if w)
    return True


def find_facts(user_text: str) -> list[tuple[str, str]]:
    """The (kind, value) pairs the user states about themselves in one turn, in the order said."""
    found: list[tuple[str, str]] = []
    for clause in _statement_clauses(user_text):
        hits: list[tuple[int, str, str]] = []
        for rule in _RULES:
            for m in rule.pattern.finditer(clause):
                if not _told_plainly(clause[: m.start()], lead_only=rule.lead_only):
                    continue
                value = rule.value(m)
                if value:
                    hits.append((m.start(), rule.kind, value))
        for _, kind, value in sorted(hits, key=lambda hit: hit[0]):
            if (kind, value) not in found:
                found.append((kind, value))
    return found
