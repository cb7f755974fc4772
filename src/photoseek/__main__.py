from photoseek.cli import app

app(prog_name="photoseek")
