from recchat.catalog import load_catalog
from recchat.movies import build_movie_catalog, normalise_title


def test_normalise_title_matches_movielens_and_omdb_styles():
    assert normalise_title("American President, The (1995)") == normalise_title("The American President")
    assert normalise_title("Seven (Se7en) (1995)") == "seven se7en"


def test_build_ml100k_catalog_from_packaged_data(tmp_path):
    out = tmp_path / "movies.jsonl"
    counts = build_movie_catalog("ml-100k", out)
    catalog = load_catalog(out)
    assert counts["movies"] == len(catalog) == 1682 and counts["with_details"] > 1200
    toy_story = catalog["ml-100k:1"]
    assert toy_story.title == "Toy Story (1995)" and toy_story.attributes["director"] == "John Lasseter"
    assert toy_story.attributes["genres"] == ["Animation", "Children's", "Comedy"]
    assert not out.with_suffix(".partial").exists()
