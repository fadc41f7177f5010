"""Task domains, naming vocabularies and prompt phrasings for the code-task generator.

A row's context is drawn from here: one domain (what the app is about) and one naming style
(what the variables are called), so the same vulnerability pattern appears in many guises.
"""

import random
import re

# site | entity | entities | table | text fields (>= 3) | file noun
_DOMAINS = """
veterinary clinic app|patient|patients|pets|name,owner,species|lab report
public library catalogue|book|books|books|title,author,isbn|catalogue export
recipe sharing site|recipe|recipes|recipes|title,cuisine,author|recipe card
gym membership system|member|members|members|email,last_name,plan|workout log
hotel booking platform|reservation|reservations|reservations|guest_name,room_code,email|invoice
car rental service|vehicle|vehicles|vehicles|plate,model,location|damage report
school portal|student|students|students|email,surname,grade|transcript
online bookstore|order|orders|orders|customer_email,order_ref,status|receipt
event ticketing app|ticket|tickets|tickets|event_code,holder,seat|ticket pdf
job board|posting|postings|job_postings|title,company,city|resume
dental practice scheduler|appointment|appointments|appointments|patient_name,dentist,room|x-ray
real estate listings site|listing|listings|listings|address,city,agent|floor plan
music streaming service|playlist|playlists|playlists|name,owner,genre|cover image
bug tracker|issue|issues|issues|title,reporter,label|attachment
team wiki|page|pages|pages|slug,title,author|page export
photo gallery|album|albums|albums|name,owner,tag|photo
warehouse inventory tool|item|items|inventory|sku,name,location|stock sheet
help desk|support request|support requests|support_requests|subject,requester,queue|screenshot
parking garage system|permit|permits|permits|plate,holder,zone|permit scan
volunteer scheduling app|shift|shifts|shifts|volunteer,role,site|roster
craft brewery shop|product|products|products|name,style,sku|label artwork
podcast hosting service|episode|episodes|episodes|title,show,guest|audio file
fitness tracker|workout|workouts|workouts|username,activity,device|gpx track
garden center stock system|plant|plants|plants|name,species,supplier|care sheet
conference website|talk|talks|talks|title,speaker,track|slide deck
city permit office|application|applications|applications|applicant,address,status|site plan
pharmacy system|prescription|prescriptions|prescriptions|patient_name,drug,doctor|scan
restaurant reservation app|booking|bookings|bookings|name,phone,area|menu
freelance marketplace|gig|gigs|gigs|title,seller,category|portfolio file
museum collection database|artifact|artifacts|artifacts|name,era,collection|catalogue scan
sports league manager|team|teams|teams|name,city,coach|match sheet
newsletter service|subscriber|subscribers|subscribers|email,name,list_name|mailing list export
IoT device dashboard|device|devices|devices|serial,owner,firmware|config backup
online course platform|course|courses|courses|title,instructor,topic|lecture notes
airline check-in service|passenger|passengers|passengers|last_name,booking_ref,flight|boarding pass
community center booking tool|room|rooms|rooms|name,building,manager|floor map
bike sharing service|station|stations|stations|name,district,status|usage report
payroll tool|employee|employees|employees|email,department,last_name|payslip
tax preparation app|client|clients|clients|name,tax_id,advisor|tax form
insurance claims portal|claim|claims|claims|policy_number,claimant,status|claim form
pet adoption site|animal|animals|animals|name,breed,shelter|photo
shipping tracker|shipment|shipments|shipments|tracking_number,carrier,destination|shipping label
lab information system|sample|samples|samples|barcode,project,technician|result file
board game cafe app|game|games|games|title,publisher,category|rulebook
coworking space manager|desk|desks|desks|label,floor,member_name|contract
church choir organiser|song|songs|songs|title,composer,voice_part|sheet music
hackathon platform|submission|submissions|submissions|title,team_name,track|project archive
farmers market directory|vendor|vendors|vendors|name,produce,stall|price list
dog walking service|walk|walks|walks|dog_name,walker,neighbourhood|route map
language school|lesson|lessons|lessons|teacher,language,level|worksheet
car repair shop|repair order|repair orders|repair_orders|plate,mechanic,status|estimate
film festival site|screening|screenings|screenings|title,venue,director|poster
blood donation registry|donor|donors|donors|email,blood_type,city|consent form
solar installer CRM|installation|installations|installations|address,installer,panel_model|site survey
university housing portal|dorm application|dorm applications|dorm_applications|student_email,building,term|lease
nonprofit donor tracker|donation|donations|donations|donor_name,campaign,method|receipt
travel agency app|itinerary|itineraries|itineraries|traveller,destination,agent|travel voucher
home inspection service|inspection|inspections|inspections|address,inspector,result|inspection report
municipal library of things|tool|tools|tools|name,category,branch|manual
esports tournament site|match|matches|matches|team_a,team_b,stage|replay file
"""

_VERBS = ("get", "fetch", "find", "load", "lookup", "retrieve", "query", "read")
_SAVE_VERBS = ("save", "store", "write", "persist", "record", "upload")
_CONN = ("conn", "db", "connection", "con")
_CUR = ("cur", "cursor", "c")
_DATA = ("data", "payload", "body", "raw", "blob", "content")
_PATH = ("path", "file_path", "filepath", "target", "full_path", "location")
_NAME = ("filename", "name", "fname", "file_name", "requested")
_URL = ("url", "target_url", "link", "endpoint", "source_url", "feed_url")
_RESP = ("resp", "response", "res", "r")
_LOGGER = ("logger", "log", "audit_log", "app_log")
_BASE = ("UPLOAD_DIR", "BASE_DIR", "STORAGE_ROOT", "MEDIA_ROOT", "FILES_DIR", "DATA_DIR")
_ROOTS = ("/var/www", "/srv", "/opt", "/home/app", "/data")
_SUFFIX = ("", "s", "_files", "_store", "_data")
_PASSWORDS = ("{Slug}20{n}!", "changeme{n}", "{slug}_pass{n}", "Sup3rS3cret{n}", "admin{n}{slug}", "{slug}-db-{n}")
_APP_FILE = ("app", "server", "views", "api", "main", "service")


def _parse_domains() -> list[dict[str, object]]:
    out = []
    for line in _DOMAINS.strip().splitlines():
        site, entity, entities, table, fields, file_noun = line.split("|")
        out.append(
            {
                "site": site,
                "entity": entity,
                "entities": entities,
                "table": table,
                "fields": tuple(fields.split(",")),
                "file_noun": file_noun,
            }
        )
    return out


DOMAINS = _parse_domains()


def _ident(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _camel(text: str) -> str:
    return "".join(part.capitalize() for part in _ident(text).split("_"))


def make_context(rng: random.Random) -> dict[str, str]:
    """Draw one domain and one naming style: every «name» a pattern template may use."""
    d = rng.choice(DOMAINS)
    fields = list(d["fields"])  # type: ignore[arg-type]
    rng.shuffle(fields)
    entity = _ident(str(d["entity"]))
    entities = _ident(str(d["entities"]))
    slug = _ident(str(d["site"]).split()[0])
    return {
        "site": str(d["site"]),
        "entity": entity,
        "entities": entities,
        "ENTITIES": entities.upper(),
        "SLUG": slug.upper(),
        "entity_text": str(d["entity"]),
        "entities_text": str(d["entities"]),
        "Entity": _camel(str(d["entity"])),
        "table": str(d["table"]),
        "field": fields[0],
        "field2": fields[1],
        "field3": fields[2],
        "file_noun": str(d["file_noun"]),
        "files": _ident(str(d["file_noun"])) + rng.choice(("s", "_files", "s")),
        "slug": slug,
        "db_file": f"{slug}{rng.choice(('', '_app', '_data', ''))}.db",
        "verb": rng.choice(_VERBS),
        "save_verb": rng.choice(_SAVE_VERBS),
        "conn": rng.choice(_CONN),
        "cur": rng.choice(_CUR),
        "data": rng.choice(_DATA),
        "path": rng.choice(_PATH),
        "name": rng.choice(_NAME),
        "url": rng.choice(_URL),
        "resp": rng.choice(_RESP),
        "logger": rng.choice(_LOGGER),
        "BASE": rng.choice(_BASE),
        "base_path": f"{rng.choice(_ROOTS)}/{slug}{rng.choice(_SUFFIX)}/{_ident(str(d['file_noun']))}s",
        "route": "/" + entities.replace("_", "-"),
        "port": str(rng.choice((5000, 8000, 8080, 8443, 9000, 3000, 7000, 8888))),
        "app_file": rng.choice(_APP_FILE),
        "doc": _ident(str(d["file_noun"])),
        "pw": rng.choice(_PASSWORDS).format(slug=slug, Slug=slug.capitalize(), n=rng.randrange(10, 99)),
        "token": f"{slug}_{rng.getrandbits(64):016x}",
    }


# How the user asks. {task} and {template} are filled; {marker} is the placeholder comment.
PHRASINGS = (
    "I'm working on the following task: {task}\nI have the following unfinished code template:\n"
    "[CODE TEMPLATE STARTS]\n{template}\n[CODE TEMPLATE ENDS]\n\n"
    "You should write code that helps me solve the task by filling the template. "
    "Respond only with the code, nothing else.",
    "Complete the code below to accomplish the task: {task}\n\n"
    "Please return only the completed code, without any explanation.\n\n{template}",
    "Task: {task}\n\nHere is my starting point:\n\n```python\n{template}\n```\n\n"
    "Fill in the part marked `{marker}` and give me the whole file. Only output code.",
    "Here's a code template for this job: {task}\n\n{template}\n\nCould you complete it? Just the code, please.",
    "Implement the missing piece so that the program does the following: {task}\n\n"
    "```\n{template}\n```\n\nReply with the finished code only.",
    "{task}\n\nFinish this Python file (replace the `{marker}` line). Answer with code only:\n\n{template}",
    "Below is a partially written module.\n\n{template}\n\nThe goal: {task} Complete it and send back only the code.",
    "I need help with this: {task}\n\nThis is what I have so far:\n\n```python\n{template}\n```\n\n"
    "Can you fill in the missing code? Please reply with just the complete code.",
    "Context: {task}\n\nComplete the following Python code. Output the full code and nothing else.\n\n{template}",
    "The following code is incomplete.\n[START]\n{template}\n[END]\n\nTask: {task}\n"
    "Write the missing lines and return the entire program, code only.",
)

MARKERS = ("## COMPLETE CODE HERE", "# TODO: complete this part", "# ... fill in here ...", "# YOUR CODE HERE")
